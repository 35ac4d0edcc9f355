"""torch.export (dynamic sizes, save and load), AOTInductor and torch.jit.trace."""

import io

import pytest
import torch
from torch.export import Dim

import softhist_ext
from softhist_ext import reference
from softhist_ext.nn import SoftHistogram


class Rows(torch.nn.Module):
    """Per-row soft histograms, a density and a learnable layer."""

    def __init__(self):
        super().__init__()
        self.learned = SoftHistogram(16, -3.0, 3.0, learnable=True, dim=-1)

    def forward(self, x):
        fixed = softhist_ext.histc(x, 16, -3.0, 3.0, dim=-1, density=True)
        return fixed + self.learned(x)


def test_export_with_dynamic_batch_and_samples_saves_and_loads():
    torch.manual_seed(0)
    model = Rows()
    program = torch.export.export(model, (torch.randn(4, 500),),
                                  dynamic_shapes=({0: Dim("B", max=64), 1: Dim("N", max=10**6)},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer).module()
    for shape in ((7, 37), (2, 3000)):
        x = torch.randn(shape, requires_grad=True)
        expected = reference.histc(x, 16, -3.0, 3.0, dim=-1, density=True) + reference.histc(
            x, 16, -3.0, 3.0, model.learned.initial_kappa, dim=-1)
        (want,) = torch.autograd.grad(expected.pow(2).sum(), x)
        for run in (program.module(), loaded):
            out = run(x)
            torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)
            (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
            torch.testing.assert_close(grad, want.float(), rtol=1e-4, atol=1e-5)


def test_export_mutual_information_for_any_batch():
    # (more than 32768 / bins**2 items: no guard on the batch from the sums)
    loss = softhist_ext.losses.MutualInformationLoss(reduction="none")
    x, y = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16)
    program = torch.export.export(loss, (x, y), dynamic_shapes=({0: Dim.AUTO}, {0: Dim.AUTO}))
    x, y = torch.rand(40, 1, 16, 16), torch.rand(40, 1, 16, 16)
    torch.testing.assert_close(program.module()(x, y), loss(x, y))


def test_export_equalize_clahe_for_any_image_size():
    class Clahe(torch.nn.Module):
        def forward(self, image):
            return softhist_ext.functional.equalize_clahe(image, 2.0, (2, 2), 32)

    program = torch.export.export(Clahe(), (torch.rand(1, 3, 16, 16),),
                                  dynamic_shapes=({2: Dim.AUTO, 3: Dim.AUTO},))
    for shape in ((1, 3, 24, 24), (1, 3, 21, 9)):
        image = torch.rand(shape)
        torch.testing.assert_close(program.module()(image), Clahe()(image))


# (a trace fixes what the data decides, bincount's length included, and says so)
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_trace_integer_bincount_with_weights():
    labels, scores = torch.tensor([0, 2, 2, 3]), torch.rand(4)
    traced = torch.jit.trace(lambda i, w: softhist_ext.bincount(i, w, 5), (labels, scores))
    other = torch.tensor([4, 4, 1, 0])
    torch.testing.assert_close(traced(other, scores), torch.bincount(other, scores, 5).float())


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_trace_a_density_with_gradients_saves_and_loads():
    class Density(torch.nn.Module):
        def forward(self, x):
            return softhist_ext.histc(x, 8, -3.0, 3.0, density=True)

    x = torch.randn(100, dtype=torch.float64, requires_grad=True)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(Density(), (x,)), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(300, dtype=torch.float64, requires_grad=True)
    expected = reference.histc(x, 8, -3.0, 3.0, density=True)
    out = loaded(x)
    torch.testing.assert_close(out, expected)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
    (want,) = torch.autograd.grad(expected.pow(2).sum(), x)
    torch.testing.assert_close(grad, want)


@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")  # (torch's own, packaging)
def test_aot_inductor_package(tmp_path):
    # (AOTInductor calls the ops without their defaulted arguments)
    model = Rows()
    program = torch.export.export(model, (torch.randn(4, 500),),
                                  dynamic_shapes=({0: Dim("B", max=64), 1: Dim("N", max=10**6)},))
    path = torch._inductor.aoti_compile_and_package(program, package_path=str(tmp_path / "rows.pt2"))
    runner = torch._inductor.aoti_load_package(path)
    x = torch.randn(7, 37)
    torch.testing.assert_close(runner(x), model(x))
