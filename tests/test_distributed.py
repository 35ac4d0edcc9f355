"""softhist_ext.distributed: a histogram of samples sharded over processes must
equal, with its gradients, the histogram of all the samples in one process."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import softhist_ext
import softhist_ext.distributed

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this torch has no torch.distributed with the gloo backend",
)

WORLD_SIZE = 2
BINS, LO, HI = 12, -3.0, 3.0


def _loss(hist):
    # Nonlinear in the histogram: its gradient depends on the global counts,
    # so a rank that used only its own would get different gradients.
    return (hist**2).sum() + hist[3]


def _histc(x, w):
    return softhist_ext.histc(x, BINS, LO, HI, weight=w)


def _worker(rank, data_path, store_path, out_dir):
    import torch.distributed.nn.functional as dist_nn_functional

    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        x_all, w_all = torch.load(data_path)
        x = x_all.chunk(WORLD_SIZE)[rank].clone().requires_grad_()
        w = w_all.chunk(WORLD_SIZE)[rank].clone().requires_grad_()
        local = _histc(x, w)
        hist = softhist_ext.distributed.all_reduce_histogram(local)
        _loss(hist).backward()

        # The same loss through torch.distributed.nn's all-reduce, whose
        # backward sums the gradients over ranks.
        x2 = x.detach().clone().requires_grad_()
        summed = dist_nn_functional.all_reduce(_histc(x2, w.detach()))
        _loss(summed).backward()

        # A gradient penalty every rank computes from global quantities: its
        # gradient needs the double backward to sum over the ranks.
        x3 = x.detach().clone().requires_grad_()
        (g3,) = torch.autograd.grad(_loss(softhist_ext.distributed.all_reduce_histogram(_histc(x3, w.detach()))),
                                    x3, create_graph=True)
        penalty = softhist_ext.distributed.all_reduce_histogram(g3.pow(2).sum()[None])
        (grad_penalty,) = torch.autograd.grad(penalty.sum(), x3)

        torch.save(
            {
                "penalty": penalty.detach(),
                "grad_penalty": grad_penalty,
                "local": local.detach(),
                "hist": hist.detach(),
                "grad_x": x.grad,
                "grad_w": w.grad,
                "grad_x_torch_nn": x2.grad,
            },
            f"{out_dir}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Runs _worker on WORLD_SIZE processes; returns (samples, weights, results)."""
    tmp = tmp_path_factory.mktemp("distributed")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4000, dtype=torch.float64, generator=gen) * 1.2
    w = torch.rand(4000, dtype=torch.float64, generator=gen) + 0.5
    torch.save((x, w), tmp / "data.pt")
    mp.spawn(
        _worker,
        args=(str(tmp / "data.pt"), str(tmp / "store"), str(tmp)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    results = [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD_SIZE)]
    return x, w, results


def _assert_close(actual, expected):
    # The sum over ranks rounds differently from one process's sum: allow
    # float64 rounding relative to the largest value (gradients mix counts of
    # hundreds with differences of neighbouring bins).
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12 * scale)


def _single_process(x, w):
    x = x.clone().requires_grad_()
    w = w.clone().requires_grad_()
    hist = _histc(x, w)
    _loss(hist).backward()
    return hist.detach(), x.grad, w.grad


def test_global_histogram_equals_single_process(sharded):
    x, w, results = sharded
    hist, _, _ = _single_process(x, w)
    for r in results:
        _assert_close(r["hist"], hist)


def test_input_histogram_left_unchanged(sharded):
    x, w, results = sharded
    shards = zip(x.chunk(WORLD_SIZE), w.chunk(WORLD_SIZE))
    for r, (xs, ws) in zip(results, shards):
        torch.testing.assert_close(r["local"], _histc(xs, ws), rtol=0, atol=0)


def test_gradients_equal_single_process(sharded):
    x, w, results = sharded
    _, grad_x, grad_w = _single_process(x, w)
    for r, gx, gw in zip(results, grad_x.chunk(WORLD_SIZE), grad_w.chunk(WORLD_SIZE)):
        _assert_close(r["grad_x"], gx)
        _assert_close(r["grad_w"], gw)


def test_second_order_gradients_equal_single_process(sharded):
    # The double backward had passed each rank's own term through, missing
    # what reaches its samples from the other ranks' (52% off).
    x, w, results = sharded
    xs = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(_loss(_histc(xs, w)), xs, create_graph=True)
    penalty = g.pow(2).sum()
    (grad_penalty,) = torch.autograd.grad(penalty, xs)
    for r, gp in zip(results, grad_penalty.chunk(WORLD_SIZE)):
        _assert_close(r["penalty"], penalty.detach().reshape(1))
        _assert_close(r["grad_penalty"], gp)


def test_torch_nn_all_reduce_scales_gradients_by_world_size(sharded):
    # The documented difference from torch.distributed.nn.functional.all_reduce.
    x, w, results = sharded
    _, grad_x, _ = _single_process(x, w)
    for r, gx in zip(results, grad_x.chunk(WORLD_SIZE)):
        _assert_close(r["grad_x_torch_nn"], WORLD_SIZE * gx)


def test_needs_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        softhist_ext.distributed.all_reduce_histogram(torch.zeros(3))


def test_rejects_integer_counts():
    with pytest.raises(ValueError, match="all_reduce_histogram's hist must be a floating-point"):
        softhist_ext.distributed.all_reduce_histogram(torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="all_reduce_histogram's hist must be a tensor, got list"):
        softhist_ext.distributed.all_reduce_histogram([1.0])
