"""The docstrings' examples run and print what they say, and help() shows
plain text (no reST or LaTeX markup)."""

import doctest
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import softhist_ext
from softhist_ext import functional, losses, nn, ops
from softhist_ext.functional import clahe, equalization, matching
from softhist_ext.losses import distances, embedding, information

PUBLIC = [softhist_ext.histc, softhist_ext.histc2d, softhist_ext.histogram, softhist_ext.histogramdd,
          softhist_ext.bincount,
          softhist_ext.mutual_information, losses.MutualInformationLoss, nn.SoftHistogram,
          functional.equalize, functional.equalize_clahe, functional.match_histograms,
          losses.histogram_distance, losses.HistogramLoss, losses.embedding_histogram_loss,
          losses.EmbeddingHistogramLoss]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("module", [ops, nn, information, distances, embedding, equalization, clahe, matching])
def test_docstring_examples(module):
    torch.manual_seed(0)
    result = doctest.testmod(module, globs={"torch": torch, "softhist_ext": softhist_ext},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("obj", PUBLIC, ids=lambda o: o.__name__)
def test_help_is_plain_text_with_examples(obj):
    text = inspect.getdoc(obj)
    assert "Examples:" in text and ">>> " in text
    for markup in (".. math::", ":func:", "``", "\\\\"):
        assert markup not in text, markup


def test_import_from_a_source_folder_names_the_shadowing(tmp_path):
    # A source checkout's softhist_ext/ (no compiled library) in the current
    # directory hides the installed package: the error says so.
    installed = Path(softhist_ext.__file__).parent
    source = tmp_path / "softhist_ext"
    source.mkdir()
    for f in installed.glob("*.py"):
        (source / f.name).write_text(f.read_text())
    result = subprocess.run([sys.executable, "-c", "import softhist_ext"], cwd=tmp_path,
                            capture_output=True, text=True,
                            env={"PYTHONPATH": str(installed.parent), "PATH": ""})
    assert result.returncode != 0
    assert "imported the source folder" in result.stderr and str(installed) in result.stderr
