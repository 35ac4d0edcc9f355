"""softhist_ext.functional (equalize, equalize_clahe, match_histograms):
against scikit-image and kornia in the hard limit, gradients, properties,
shapes, ranges, errors, TorchScript and torch.compile."""

import io

import numpy as np
import pytest
import torch

import softhist_ext
from softhist_ext.functional import equalize, equalize_clahe, match_histograms

skimage = pytest.importorskip("skimage")
kornia = pytest.importorskip("kornia")
from skimage import data, exposure  # noqa: E402

CAMERA = data.camera()                       # (512, 512) uint8
ASTRONAUT = data.astronaut()                 # (512, 512, 3) uint8
EIGHT_BIT = dict(bins=256, min=-0.5, max=255.5)  # bins centred on the integers 0..255


def chw(rgb):
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)


# ---------------------------------------------------------------- equalize

def test_equalize_hard_equals_skimage_on_integer_images():
    ours = equalize(torch.from_numpy(CAMERA).double(), kernel="hard", **EIGHT_BIT)
    np.testing.assert_allclose(ours.numpy(), exposure.equalize_hist(CAMERA), rtol=0, atol=1e-12)
    # All three channels in one call, each against skimage on that channel alone.
    ours = equalize(chw(ASTRONAUT).double(), kernel="hard", **EIGHT_BIT)
    for c in range(3):
        expected = exposure.equalize_hist(ASTRONAUT[..., c])
        np.testing.assert_allclose(ours[c].numpy(), expected, rtol=0, atol=1e-12)


def test_equalize_hard_equals_skimage_on_a_volume():
    volume = np.random.default_rng(0).integers(0, 40, size=(6, 7, 8)).astype(np.uint8)
    volume[0, 0, 0], volume[-1, -1, -1] = 0, 39
    ours = equalize(torch.from_numpy(volume).double()[None], bins=40, min=-0.5, max=39.5,
                    kernel="hard", spatial_dims=3)
    np.testing.assert_allclose(ours[0].numpy(), exposure.equalize_hist(volume), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale,offset", [(1 / 255, 0.0), (1.0, 0.0), (16.0, -1000.0)])
def test_equalize_float_images_within_a_bin_share_of_skimage(scale, offset):
    # skimage interpolates the CDF linearly between bin centres (np.interp)
    # where the hard limit steps per bin: they differ by at most one bin's
    # share of the pixels. Default range: the image's own (0..1, 0..255, CT-like).
    image = CAMERA * scale + offset
    expected = exposure.equalize_hist(image)
    counts, _ = np.histogram(image, bins=256)
    share = counts.max() / image.size
    hard = equalize(torch.from_numpy(image), kernel="hard").numpy()
    assert np.abs(hard - expected).max() <= share + 1e-9
    soft = equalize(torch.from_numpy(image)).numpy()  # the default box kernel
    assert np.abs(soft - expected).max() < 2 * share
    assert np.abs(soft - expected).mean() < share / 4


def test_equalize_within_stated_tolerance_of_kornia():
    # kornia (PIL): an exclusive CDF scaled without the last level's pixels,
    # rounded to 8 bits. Per pixel it differs from the inclusive CDF by at most
    # the pixel's own level's share + the last level's share + 1/255.
    x = chw(ASTRONAUT).float()
    theirs = kornia.enhance.equalize((x / 255)[None])[0]
    ours = equalize(x, kernel="hard", **EIGHT_BIT)
    levels = x.long().reshape(3, -1)
    counts = torch.stack([torch.bincount(levels[c], minlength=256) for c in range(3)]).float() / levels.shape[1]
    own = counts.gather(1, levels).reshape(x.shape)
    last = torch.stack([counts[c][counts[c] > 0][-1] for c in range(3)])[:, None, None]
    diff = (theirs - ours).abs()
    assert (diff <= own + last + 1 / 255 + 1e-6).all()
    assert diff.mean() < 0.02


def test_equalize_output_in_unit_interval_and_nearly_idempotent():
    ct = torch.from_numpy(CAMERA[::4, ::4].astype(np.float32)) * 16 - 1000
    ct[0, 0] = 30000.0  # an outlier stretches the range
    for kernel in [*softhist_ext.KERNELS, "hard"]:
        out = equalize(ct, kernel=kernel)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    once = equalize(torch.from_numpy(CAMERA / 255.0))
    twice = equalize(once)
    assert (twice - once).abs().max() < 0.01 and (twice - once).abs().mean() < 0.005
    assert (once - torch.from_numpy(CAMERA / 255.0)).abs().mean() > 0.05  # the first pass did change it


def test_equalize_fixed_range_maps_beyond_it_to_the_ends():
    x = torch.tensor([[-5.0, 0.1, 0.4, 0.6, 9.0, float("inf"), float("-inf"), float("nan")]])
    out = equalize(x, bins=4, min=0.0, max=1.0, kernel="hard")
    # Three samples inside [0, 1], one per bin 0, 1, 2: the CDF is [1/3, 2/3, 1, 1].
    torch.testing.assert_close(out[0, :5], torch.tensor([1 / 3, 1 / 3, 2 / 3, 1.0, 1.0]))
    assert out[0, 5] == 1.0 and out[0, 6] == out[0, 0] and out[0, 7].isnan()


# ----------------------------------------------------------- equalize_clahe

def kornia_levels(image):
    # 8-bit levels k -> (k + 0.25) / 255 (level 255 -> 1.0): inside kornia's
    # bins floor(x * 255), away from their edges.
    return torch.from_numpy(np.minimum((image.astype(np.float64) + 0.25) / 255, 1.0))


KORNIA_BINS = dict(bins=256, min=0.0, max=256 / 255)


@pytest.mark.parametrize("shape", [(256, 256), (250, 235), (251, 167)])  # even, odd, mixed tiles
@pytest.mark.parametrize("clip", [0.0, 2.0, 40.0])
def test_clahe_hard_within_stated_tolerance_of_kornia(shape, clip):
    # Differences: kornia rounds each tile's mapping to 8 bits (0.5/255) and
    # spreads the excess's remainder r < bins OpenCV's way (one count every
    # bins // r bins) where we spread it evenly: at most bins/4 + 1 counts of
    # the tile's th * tw pixels in the CDF.
    image = kornia_levels(CAMERA[: shape[0], : shape[1]])
    batch = torch.stack([image, image.flip(-1), 1 - image]).reshape(1, 3, *shape)
    theirs = kornia.enhance.equalize_clahe(batch, clip_limit=clip, grid_size=(8, 8))
    ours = equalize_clahe(batch, clip, (8, 8), kernel="hard", **KORNIA_BINS)
    tile = -(-shape[0] // 8) * -(-shape[1] // 8)
    tolerance = 0.5 / 255 + 1e-9 if clip == 0 else 0.5 / 255 + (256 / 4 + 1) / tile
    assert (ours - theirs).abs().max() <= tolerance
    assert (ours - theirs).abs().mean() < (0.25 / 255 if clip == 0 else 0.02)


def test_clahe_close_to_skimage_adapthist():
    # skimage: clip_limit is a fraction of the tile (ours x bins), iterative
    # clipping, 14-bit levels, symmetric padding, output rescaled: close, not equal.
    for clip in [0.01, 0.03]:
        theirs = exposure.equalize_adapthist(CAMERA, clip_limit=clip)
        ours = equalize_clahe(torch.from_numpy(CAMERA / 255.0), clip * 256, (8, 8), 256, -0.5 / 255,
                              255.5 / 255, kernel="hard").numpy()
        assert np.abs(ours - theirs).mean() < 0.03
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.99


def test_clahe_soft_close_to_hard_and_in_unit_interval():
    image = torch.from_numpy(CAMERA[::2, ::2].astype(np.float32))  # 0..255, own range
    hard = equalize_clahe(image, 2.0, (4, 4), kernel="hard")
    soft = equalize_clahe(image, 2.0, (4, 4))
    assert soft.min() >= 0 and soft.max() <= 1 and torch.isfinite(soft).all()
    assert (soft - hard).abs().mean() < 0.01
    # With one tile and no clipping CLAHE is global equalisation.
    torch.testing.assert_close(equalize_clahe(image, 0.0, (1, 1), kernel="hard"),
                               torch.from_numpy(exposure.equalize_hist(CAMERA[::2, ::2])).float(),
                               rtol=0, atol=1e-6)


# --------------------------------------------------------- match_histograms

def test_match_hard_equals_skimage_on_integer_images():
    ours = match_histograms(torch.from_numpy(CAMERA).double(), torch.from_numpy(ASTRONAUT[..., 0]).double(),
                            kernel="hard", **EIGHT_BIT)
    expected = exposure.match_histograms(CAMERA.astype(np.float64), ASTRONAUT[..., 0].astype(np.float64))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-9)
    # RGB, a reference of another size, all channels in one call.
    reference = ASTRONAUT[::-1, ::2, ::-1].astype(np.float64)
    expected = exposure.match_histograms(ASTRONAUT.astype(np.float64), reference, channel_axis=-1)
    ours = match_histograms(chw(ASTRONAUT).double(), chw(reference), kernel="hard", **EIGHT_BIT)
    np.testing.assert_allclose(ours.permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-9)


def test_match_float_images_within_half_a_bin_of_skimage():
    # skimage interpolates between the values present, we between bin centres.
    source, reference = CAMERA / 255.0, ASTRONAUT[..., 1] * 4.0 - 100  # different units
    expected = exposure.match_histograms(source, reference)
    half_bin = 0.5 * (reference.max() - reference.min()) / 256
    hard = match_histograms(torch.from_numpy(source), torch.from_numpy(reference), kernel="hard").numpy()
    assert np.abs(hard - expected).max() <= half_bin + 1e-9
    soft = match_histograms(torch.from_numpy(source), torch.from_numpy(reference)).numpy()
    assert np.abs(soft - expected).max() <= 2 * half_bin and np.abs(soft - expected).mean() < half_bin


def test_match_below_the_range_takes_the_first_nonempty_bin_and_an_empty_reference_raises():
    # -5 lies below min, where the source's CDF is 0 (its bin 0 is empty):
    # the reference's first nonempty bin, [5, 6.25), gives its centre.
    source = torch.tensor([[-5.0, 5.0, 6.0, 7.0, 8.0, 9.0]])
    reference = torch.tensor([[6.0, 6.5, 7.0, 7.5, 8.0, 8.5]])
    out = match_histograms(source, reference, 8, 0.0, 10.0, kernel="hard")
    assert out[0, 0].item() == 5.625
    for empty, rng in ((torch.full((2, 3), float("nan")), ()), (reference + 100, (8, 0.0, 10.0))):
        with pytest.raises(ValueError, match="reference image-channel 0 .*has no mass"):
            match_histograms(source, empty, *rng)


def test_match_to_itself_is_nearly_the_identity():
    image = torch.from_numpy(CAMERA[::2, ::2] / 255.0)
    half_bin = 0.5 / 256
    for kernel in [*softhist_ext.KERNELS, "hard"]:
        out = match_histograms(image, image, kernel=kernel)
        assert (out - image).abs().max() <= 2 * half_bin + 1e-9
    assert (match_histograms(image, image) - image).abs().mean() < 0.2 * half_bin


def test_match_broadcasts_one_reference_over_a_batch():
    source = chw(ASTRONAUT[::4, ::4]).double()
    batch = torch.stack([source, source.flip(-1)])          # (2, 3, 128, 128)
    reference = chw(ASTRONAUT[::-3, ::3, ::-1]).double()     # (3, 171, 171)
    ours = match_histograms(batch, reference, kernel="hard", **EIGHT_BIT)
    for b in range(2):
        expected = exposure.match_histograms(batch[b].permute(1, 2, 0).numpy(),
                                             reference.permute(1, 2, 0).numpy(), channel_axis=-1)
        np.testing.assert_allclose(ours[b].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-9)


# ------------------------------------------------------- gradients, shapes

def test_gradcheck_equalize():
    x = (torch.randn(2, 5, 6, dtype=torch.float64)).requires_grad_()
    for kernel in softhist_ext.KERNELS:
        assert torch.autograd.gradcheck(lambda x: equalize(x, 8, -4.0, 4.0, None, kernel), (x,), fast_mode=True)


def test_gradcheck_equalize_clahe():
    x = (torch.rand(1, 2, 7, 6, dtype=torch.float64) * 4 - 2).requires_grad_()
    # clip_limit 1: limit = max(floor(1 * 12 / 8), 1) = 1 count, so clipping is active.
    assert torch.autograd.gradcheck(lambda x: equalize_clahe(x, 1.0, (2, 2), 8, -3.0, 3.0), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda x: equalize_clahe(x, 0.0, (2, 3), 8, -3.0, 3.0, None, "bspline"), (x,), fast_mode=True)


def test_gradcheck_match_histograms():
    s = (torch.randn(2, 4, 5, dtype=torch.float64)).requires_grad_()
    r = (torch.randn(2, 6, 3, dtype=torch.float64) * 0.7).requires_grad_()
    assert torch.autograd.gradcheck(lambda s, r: match_histograms(s, r, 8, -4.0, 4.0), (s, r), fast_mode=True)


def test_gradients_finite_with_nan_and_constant_images():
    x = torch.rand(2, 3, 16, 16) * 255
    x[0, 0, 3, 4] = float("nan")
    x[1, 2] = 7.0  # a constant channel
    x.requires_grad_()
    for out in (equalize(x), equalize_clahe(x, 2.0, (4, 4)), match_histograms(x, x.detach().flip(0))):
        nan = torch.isnan(out)
        assert nan.sum() == 1 and nan[0, 0, 3, 4]
        (g,) = torch.autograd.grad(out.nan_to_num().sum(), x)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("fn", ["equalize", "equalize_clahe", "match_histograms"])
def test_batched_equals_per_image_and_keeps_dtype(fn):
    x = torch.rand(2, 3, 24, 20) * 255
    ref = torch.rand(3, 30, 18)
    call = {"equalize": lambda v, r: equalize(v),
            "equalize_clahe": lambda v, r: equalize_clahe(v, 3.0, (3, 2)),
            "match_histograms": lambda v, r: match_histograms(v, r)}[fn]
    batched = call(x, ref)
    assert batched.shape == x.shape and batched.dtype == x.dtype
    for b in range(2):
        torch.testing.assert_close(call(x[b], ref), batched[b], rtol=1e-4, atol=1e-4)  # (C, H, W)
        for c in range(3):
            torch.testing.assert_close(call(x[b, c], ref[c]), batched[b, c], rtol=1e-4, atol=1e-4)  # (H, W)
    half = call(x.half(), ref.half())
    assert half.dtype == torch.float16 and (half.float() - batched).abs().max() < 0.05


@pytest.mark.parametrize("fn", ["equalize", "equalize_clahe", "match_histograms"])
@pytest.mark.parametrize("kernel", ["box", "bspline"])
@pytest.mark.parametrize("bad, fixed", [(float("nan"), False), (float("inf"), False), (300.0, True)])
def test_an_image_is_unchanged_by_a_nonfinite_or_out_of_range_pixel_in_another(fn, kernel, bad, fixed):
    # A batch whose pixels are all finite and inside the range skips clamping
    # them into it and keeping NaN (nothing for either to change); one pixel
    # elsewhere that is not makes the whole batch take them. Image 0's values
    # and gradients must not tell the two apart.
    x = chw(ASTRONAUT[:40, :48]).double()[None].repeat(2, 1, 1, 1)
    x[1] = x[1].flip(-1)
    ref = torch.from_numpy(CAMERA[:36, :30]).double()
    rng = EIGHT_BIT if fixed else {"bins": 32}
    call = {"equalize": lambda v: equalize(v, kernel=kernel, **rng),
            "equalize_clahe": lambda v: equalize_clahe(v, 2.0, (2, 3), kernel=kernel, **rng),
            "match_histograms": lambda v: match_histograms(v, ref, kernel=kernel, **rng)}[fn]
    g = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    results = []
    for v in (x, x.clone().index_put_((torch.tensor(1), torch.tensor(2), torch.tensor(5), torch.tensor(7)),
                                      torch.tensor(bad, dtype=torch.float64))):
        v = v.requires_grad_()
        out = call(v)
        (out * g).sum().backward()
        results.append((out[0].detach(), v.grad[0]))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_own_range_makes_units_irrelevant():
    x = torch.rand(3, 20, 20, dtype=torch.float64)
    torch.testing.assert_close(equalize(x * 255), equalize(x))
    torch.testing.assert_close(equalize_clahe(x * 4000 - 1000, 2.0, (2, 2)), equalize_clahe(x, 2.0, (2, 2)))
    r = torch.rand(3, 10, 10, dtype=torch.float64)
    torch.testing.assert_close(match_histograms(x * 4000 - 1000, r * 255), 255 * match_histograms(x, r))


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("call,error,words", [
    (lambda x: equalize(x, bins=0), ValueError, "bins must be >= 1"),
    (lambda x: equalize(x, bins="4"), TypeError, "bins must be an int"),
    (lambda x: equalize(x.long()), ValueError, "image.float()"),
    (lambda x: equalize(x[0, 0, 0]), ValueError, "at least spatial_dims"),
    (lambda x: equalize(x, min=0.0), ValueError, "min and max together"),
    (lambda x: equalize(x, min=1.0, max=0.0), ValueError, "min must be below max"),
    (lambda x: equalize(x, kappa=5.0), ValueError, "pass min and max too"),
    (lambda x: equalize(x, spatial_dims=0), ValueError, "spatial_dims must be >= 1"),
    (lambda x: equalize(x[..., :0]), ValueError, "no pixels"),
    (lambda x: equalize_clahe(x, grid_size=(9, 2)), ValueError, "grid_size"),
    (lambda x: equalize_clahe(x, grid_size=4), TypeError, "grid_size must be a pair of ints"),
    (lambda x: equalize_clahe(x, clip_limit=-1.0), ValueError, "clip_limit must be >= 0 (0 or inf: no clipping)"),
    (lambda x: equalize_clahe(x, clip_limit=torch.tensor(2.0, requires_grad=True)), TypeError,
     "equalize_clahe's clip_limit must be a number (a constant for autograd here)"),
    (lambda x: match_histograms(x, torch.rand(2, 2, 8, 8)), ValueError, "must broadcast"),
    (lambda x: match_histograms(x, [1.0]), TypeError, "reference must be a Tensor"),
])
def test_errors_name_the_argument(call, error, words):
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call(x)


# ---------------------------------------------- TorchScript, torch.compile

class Pipeline(torch.nn.Module):
    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        a = softhist_ext.functional.equalize(image)
        b = softhist_ext.functional.equalize_clahe(image, 2.0, (2, 2))
        c = softhist_ext.functional.match_histograms(image, reference, 64, 0.0, 1.0, 50.0)
        return torch.stack([a, b, c])


def test_torchscript_functions_and_a_saved_module():
    x = torch.rand(2, 3, 12, 10)
    ref = torch.rand(3, 9, 9)
    expected = Pipeline()(x, ref)
    for fn, args in [(equalize, (x,)), (equalize_clahe, (x, 2.0, (2, 2))), (match_histograms, (x, ref))]:
        torch.testing.assert_close(torch.jit.script(fn)(*args), fn(*args))
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(Pipeline()), buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.jit.load(buffer)(x, ref), expected)
    # Positive control: the pipeline's three outputs differ.
    assert (expected[0] - expected[1]).abs().max() > 0.01 and (expected[0] - expected[2]).abs().max() > 0.01


def test_torch_compile_fullgraph():
    torch._dynamo.reset()
    x = torch.rand(2, 3, 12, 10, requires_grad=True)
    ref = torch.rand(3, 9, 9)
    compiled = torch.compile(Pipeline(), fullgraph=True)
    out = compiled(x, ref)
    torch.testing.assert_close(out, Pipeline()(x, ref))
    (g,) = torch.autograd.grad(out.sum(), x)
    (expected,) = torch.autograd.grad(Pipeline()(x, ref).sum(), x)
    torch.testing.assert_close(g, expected, rtol=1e-4, atol=1e-4)


def test_torch_compile_dynamic_compiles_once_for_every_image_size():
    from torch._dynamo.testing import CompileCounter

    counter = CompileCounter()
    compiled = torch.compile(lambda x: equalize_clahe(x, 2.0, (2, 3), 16), fullgraph=True, dynamic=True,
                             backend=counter)
    for n in (8, 11, 16):  # with and without reflected padding
        x = torch.rand(2, n, n + 2, dtype=torch.float64)
        torch.testing.assert_close(compiled(x), equalize_clahe(x, 2.0, (2, 3), 16))
    assert counter.frame_count == 1


def _hat_weights(v, centres):
    """Linear interpolation weights of the centres at v, clamped beyond the
    outer ones: w[..., k] (np.interp's weights)."""
    w = np.zeros(v.shape + (len(centres),))
    for k in range(len(centres)):
        e = np.zeros(len(centres))
        e[k] = 1.0
        w[..., k] = np.interp(v, centres, e)
    return w


@pytest.mark.parametrize("clip, cut", [(0.0, (0, 0)), (2.0, (0, 0)), (2.0, (1, 1))])
def test_equalize_clahe_box_is_bilinear_blend_of_linearly_interpolated_tile_cdfs(clip, cut):
    # The default (box) kernel written out in numpy: each tile's histogram by
    # linear binning onto the bin centres, clipped, its CDF interpolated
    # linearly between bin centres at each pixel, and the four surrounding
    # tiles' values blended bilinearly between tile centres (clamped). cut:
    # rows and columns short of whole tiles, reflect-padded for the tiles.
    rng = np.random.default_rng(0)
    gh, gw, th, tw, bins = 3, 2, 4, 5, 8
    height, width = gh * th - cut[0], gw * tw - cut[1]
    original = rng.random((2, height, width)) ** 2
    image = np.pad(original, ((0, 0), (0, cut[0]), (0, cut[1])), mode="reflect")
    centres = (np.arange(bins) + 0.5) / bins
    limit = max(np.floor(clip * th * tw / bins), 1.0)
    cdfs = np.zeros((2, gh, gw, bins))
    for c in range(2):
        for a in range(gh):
            for b in range(gw):
                tile = image[c, a * th:(a + 1) * th, b * tw:(b + 1) * tw].ravel()
                h = _hat_weights(tile, centres).sum(0)
                if clip > 0:
                    h = np.minimum(h, limit) + np.maximum(h - limit, 0).sum() / bins
                cdfs[c, a, b] = np.cumsum(h) / h.sum()
    expected = np.zeros_like(image)
    rows = _hat_weights(np.arange(gh * th), np.arange(gh) * th + (th - 1) / 2)
    cols = _hat_weights(np.arange(gw * tw), np.arange(gw) * tw + (tw - 1) / 2)
    for c in range(2):
        for i in range(height):
            for j in range(width):
                for a in range(gh):
                    for b in range(gw):
                        value = np.interp(image[c, i, j], centres, cdfs[c, a, b])
                        expected[c, i, j] += rows[i, a] * cols[j, b] * value
    ours = equalize_clahe(torch.from_numpy(original), clip, (gh, gw), bins, 0.0, 1.0)
    np.testing.assert_allclose(ours.numpy(), expected[:, :height, :width], rtol=0, atol=1e-12)


def test_empty_batches_give_empty_results():
    batch = torch.rand(0, 3, 8, 8)
    assert equalize(batch).shape == (0, 3, 8, 8)
    assert equalize_clahe(batch, grid_size=(2, 2)).shape == (0, 3, 8, 8)
    assert match_histograms(batch, torch.rand(3, 8, 8)).shape == (0, 3, 8, 8)


def test_images_with_nothing_inside_a_fixed_range_take_the_uniform_cdf():
    # A CT window [-160, 240] over soft tissue, and bone (1500 and up) beyond
    # it: an image, or a CLAHE tile, of bone alone has no mass in the window,
    # and its pixels are the brightest (1), as the window's top clamps them.
    g = torch.Generator().manual_seed(0)
    ct = torch.rand(64, 64, generator=g, dtype=torch.float64) * 200 - 100
    ct[:, 32:] = 1500 + torch.rand(64, 32, generator=g, dtype=torch.float64) * 100
    window = dict(min=-160.0, max=240.0)
    for kernel in ("box", "hard", "logistic"):
        out = equalize_clahe(ct, 2.0, (4, 4), kernel=kernel, **window)
        blend = 0 if kernel in ("box", "hard") else 1 / 256  # (a smooth lookup reads the last bins)
        assert (out[:, 48:] - 1).abs().max() <= blend
        assert (equalize(ct[:, 32:], kernel=kernel, **window) - 1).abs().max() <= blend
        # below the window: about 0 (the first of 256 uniform bins)
        assert equalize(ct[:, 32:] - 3000, kernel=kernel, **window).max() <= 1.5 / 256


def test_clahe_clip_limit_inf_is_no_clipping():
    image = torch.from_numpy(CAMERA[:64, :64]).double()
    torch.testing.assert_close(equalize_clahe(image, float("inf"), (4, 4)), equalize_clahe(image, 0.0, (4, 4)),
                               rtol=0, atol=0)
