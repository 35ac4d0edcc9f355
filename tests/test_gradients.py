"""Gradients against the dense reference and finite differences."""

import math

import pytest
import torch

import softhist_ext
from softhist_ext import reference


def _samples(n, device, requires_grad=True):
    x = torch.randn(n, dtype=torch.float64, device=device) * 1.2
    return x.requires_grad_(requires_grad)


@pytest.mark.parametrize("kappa", [None, 0.8, 6.0, 60.0])
def test_gradient_matches_dense_reference(device, kappa):
    x = _samples(400, device)
    g = torch.randn(24, dtype=torch.float64, device=device)
    (ours,) = torch.autograd.grad(softhist_ext.histc(x, 24, -3.0, 3.0, kappa), x, g)
    xr = x.detach().cpu().requires_grad_()
    (dense,) = torch.autograd.grad(reference.histc(xr, 24, -3.0, 3.0, kappa), xr, g.cpu())
    torch.testing.assert_close(ours.cpu(), dense, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kappa", [0.5, 4.0, 40.0])
def test_gradcheck_and_gradgradcheck(device, kappa):
    x = _samples(40, device)
    f = lambda x: softhist_ext.histc(x, 8, -2.0, 2.0, kappa)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_double_backward_matches_dense_reference(device):
    x = _samples(100, device)
    g = torch.randn(10, dtype=torch.float64, device=device)
    v = torch.randn(100, dtype=torch.float64, device=device)

    def hvp(fn, x):
        (gx,) = torch.autograd.grad(fn(x, 10, -2.0, 2.0, 3.0), x, g, create_graph=True)
        return torch.autograd.grad(gx, x, v)[0]

    xr = x.detach().cpu().requires_grad_()
    torch.testing.assert_close(
        hvp(softhist_ext.histc, x).cpu(), hvp(reference.histc, xr), rtol=1e-9, atol=1e-10
    )


def test_third_order_gradcheck():
    x = _samples(12, "cpu")
    g = torch.randn(5, dtype=torch.float64)

    def first_grad(x):
        return torch.autograd.grad(softhist_ext.histc(x, 5, -2.0, 2.0, 2.0), x, g, create_graph=True)[0]

    assert torch.autograd.gradgradcheck(first_grad, (x,))


def test_nonfinite_samples_get_zero_gradient(device):
    x = torch.tensor([0.1, math.nan, math.inf, -math.inf, -0.3], dtype=torch.float64, device=device)
    x.requires_grad_()
    softhist_ext.histc(x, 4, -1.0, 1.0, 3.0).pow(2).sum().backward()
    assert torch.equal(x.grad[1:4].cpu(), torch.zeros(3, dtype=torch.float64))
    assert x.grad[0] != 0 and x.grad[4] != 0


@pytest.mark.parametrize("kernel", softhist_ext.KERNELS)
@pytest.mark.parametrize("n", [300, 20000])  # (by windows; by Chebyshev pieces)
def test_nonfinite_incoming_gradient_reaches_the_samples_near_its_bin(kernel, n):
    # Every sample whose kernel reaches the bin (past the cut, for the smooth
    # kernels), and none far from it.
    bins, j = 128, 64
    x = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_()
    g = torch.zeros(bins, dtype=torch.float64)
    g[j] = math.nan
    (grad,) = torch.autograd.grad(softhist_ext.histc(x, bins, 0.0, 1.0, kernel=kernel), x, g)
    masses = reference.histc(x.detach()[:, None], bins, 0.0, 1.0, kernel=kernel, dim=-1)
    reached = masses[:, j] > 1e-12
    far = (x.detach() * bins - (j + 0.5)).abs() > 32
    assert grad[reached].isnan().all() and reached.sum() > 0
    assert grad[far].isfinite().all() and far.sum() > 0


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_samples_with_no_gradient_keep_0_in_the_second_order_whatever_their_weight(bad):
    # A NaN sample, one whose kernel reaches no bin, and in-range ones; the
    # first two carry a non-finite weight, which must not reach the
    # second-order gradient as 0 * inf either.
    x = torch.tensor([math.nan, 30.0, 0.3, 0.6], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([bad, bad, 1.0, 1.0], dtype=torch.float64, requires_grad=True)
    h = softhist_ext.histc(x, 4, 0.0, 1.0, weight=w)
    gx, gw = torch.autograd.grad(h.pow(2).sum(), [x, w], create_graph=True)
    second = torch.autograd.grad(gx.sum() + gw[2:].sum(), [x, w])
    xr = x.detach()[2:].clone().requires_grad_()
    wr = w.detach()[2:].clone().requires_grad_()
    hr = reference.histc(xr, 4, 0.0, 1.0, weight=wr)
    gxr, gwr = torch.autograd.grad(hr.pow(2).sum(), [xr, wr], create_graph=True)
    expected = torch.autograd.grad(gxr.sum() + gwr.sum(), [xr, wr])
    for ours, theirs in zip(second, expected):
        assert torch.equal(ours[:2], torch.zeros(2, dtype=torch.float64))
        torch.testing.assert_close(ours[2:], theirs)


def test_empty_input_gets_empty_gradient(device):
    x = torch.empty(0, 2, device=device, requires_grad=True)
    softhist_ext.histc(x, 3, -1.0, 1.0).sum().backward()
    assert x.grad.shape == (0, 2)


def test_gradient_keeps_shape_and_dtype_of_noncontiguous_input(device):
    base = torch.randn(5, 6, device=device, dtype=torch.float64)
    x = base.t().requires_grad_()
    softhist_ext.histc(x, 7, -2.0, 2.0).pow(2).sum().backward()
    xr = base.t().detach().cpu().requires_grad_()
    reference.histc(xr, 7, -2.0, 2.0).pow(2).sum().backward()
    assert x.grad.shape == (6, 5)
    torch.testing.assert_close(x.grad.cpu(), xr.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_gradients(device, dtype):
    x64 = torch.randn(2000, dtype=torch.float64)
    x = x64.to(dtype).to(device).requires_grad_()
    g = torch.randn(16, dtype=torch.float64)
    softhist_ext.histc(x, 16, -3.0, 3.0).backward(g.to(dtype).to(device))
    xr = x64.to(dtype).double().requires_grad_()
    reference.histc(xr, 16, -3.0, 3.0).backward(g.to(dtype).double())
    assert x.grad.dtype == dtype
    scale = xr.grad.abs().max().item()
    tol = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    assert (x.grad.cpu().double() - xr.grad).abs().max().item() < tol * scale


def test_forward_mode_ad_raises_rather_than_dropping_tangents():
    # The ops have no jvp: forward-mode AD and torch.func.jvp must say so,
    # never return a histogram whose tangent is silently zero.
    import torch.autograd.forward_ad as fwAD

    x, t = torch.rand(100), torch.ones(100)
    with pytest.raises(NotImplementedError, match="jvp"):
        with fwAD.dual_level():
            softhist_ext.histc(fwAD.make_dual(x, t), 10, 0.0, 1.0)
    with pytest.raises(RuntimeError, match="functorch transforms"):
        torch.func.jvp(lambda v: softhist_ext.histc(v, 10, 0.0, 1.0), (x,), (t,))
