"""softhist_ext on a CUDA device, timed with CUDA events, as ratios.

    python bench/bench_cuda.py             # N = 1e8 float32 randn, 256 bins, kappa*width = 8
    python bench/bench_cuda.py --n 1e7     # a smaller GPU

For each case, forward+backward against
  (a) the memory floor: a device-to-device copy of x, which moves the bytes the
      pass must (read x and the upstream gradient g, write x's gradient);
  (b) torch.histc's CUDA forward (no gradient) of the same samples.
Cases: randn over [-4, 4]; the adversarial one, every sample in the same bin;
and 65,536 bins. Then a determinism check: each pass run twice, compared
bitwise (torch.histc's float atomics are not reproducible; these must be).

Last, the joint histogram: mutual_information of two 256^3 float32 volumes
(--mi-size) with 64 x 64 bins, forward and forward+backward, for the default
B-spline Parzen window and the logistic kernel.
"""

import argparse
import statistics
import sys

import torch

import softhist_ext

LO, HI = -4.0, 4.0


def cuda_ms(fn, repeat):
    """Median milliseconds of fn() over `repeat` runs after warm-up."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def forward_backward(x, g, bins, kappa):
    xr = x.detach().requires_grad_()
    out = softhist_ext.histc(xr, bins, LO, HI, kappa)
    out.backward(g)
    return out, xr.grad


def run_case(name, x, bins, kappa_width, repeat):
    kappa = kappa_width * bins / (HI - LO)
    g = torch.randn(bins, device=x.device, dtype=x.dtype)
    copy_into = torch.empty_like(x)
    ms = {
        "forward+backward": cuda_ms(lambda: forward_backward(x, g, bins, kappa), repeat),
        "forward": cuda_ms(lambda: softhist_ext.histc(x, bins, LO, HI, kappa), repeat),
        "copy of x": cuda_ms(lambda: copy_into.copy_(x), repeat),
        "torch.histc forward": cuda_ms(lambda: torch.histc(x, bins, LO, HI), repeat),
    }
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    forward_backward(x, g, bins, kappa)
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    fb = ms["forward+backward"]
    print(f"\n{name}: N = {x.numel():.3g}, {bins} bins, kappa*width = {kappa_width}")
    for label, t in ms.items():
        print(f"  {label:<22} {t:9.3f} ms")
    print(f"  forward+backward / copy of x          = {fb / ms['copy of x']:.2f}")
    print(f"  forward+backward / torch.histc forward = {fb / ms['torch.histc forward']:.2f}")
    print(f"  peak memory of forward+backward: {peak_mb:.1f} MB")

    first, second = forward_backward(x, g, bins, kappa), forward_backward(x, g, bins, kappa)
    same = torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    print(f"  bitwise identical run to run: {'yes' if same else 'NO'}")
    return same


def run_mi_case(size, bins, kernel, repeat):
    """mutual_information(x, y) of two size^3 volumes, gradient with respect to x."""
    x = torch.rand(1, size, size, size, device="cuda")
    y = (0.7 * x + 0.3 * torch.rand_like(x)).clamp(0, 1)  # correlated, as a registration pair

    def forward():
        return softhist_ext.mutual_information(x, y, bins=bins, kernel=kernel)

    def forward_backward():
        xr = x.detach().requires_grad_()
        mi = softhist_ext.mutual_information(xr, y, bins=bins, kernel=kernel)
        mi.sum().backward()
        return mi, xr.grad

    ms_forward = cuda_ms(forward, repeat)
    ms_both = cuda_ms(forward_backward, repeat)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    forward_backward()
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    print(f"\nmutual information, {kernel}: two {size}^3 float32 volumes "
          f"({x.numel():.3g} voxels), {bins} x {bins} bins")
    print(f"  forward                {ms_forward:9.3f} ms")
    print(f"  forward+backward       {ms_both:9.3f} ms")
    print(f"  peak memory of forward+backward: {peak_mb:.1f} MB")
    first, second = forward_backward(), forward_backward()
    same = torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    print(f"  bitwise identical run to run: {'yes' if same else 'NO'}")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=float, default=1e8, help="samples (default 1e8)")
    parser.add_argument("--kw", type=float, default=8.0, help="kappa * bin width (default 8)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--mi-size", type=int, default=256, help="volume side (default 256)")
    parser.add_argument("--mi-bins", type=int, default=64, help="bins per axis (default 64)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_cuda.py needs a CUDA device, and torch.cuda.is_available() is False.")
    if not torch._C._dispatch_has_kernel_for_dispatch_key("softhist::scatter", "CUDA"):
        sys.exit(
            "softhist_ext was built without CUDA kernels: reinstall it (pip install .) "
            "where nvcc's major version matches torch's CUDA " + str(torch.version.cuda)
        )
    print(torch.cuda.get_device_name(), "| torch", torch.__version__)

    n, bins = int(args.n), 256
    x = torch.randn(n, device="cuda")
    width = (HI - LO) / bins
    one_bin = LO + width * (bins // 2 + torch.rand(n, device="cuda"))  # all in bin 128
    ok = run_case("randn", x, bins, args.kw, args.repeat)
    ok &= run_case("adversarial: every sample in one bin", one_bin, bins, args.kw, args.repeat)
    ok &= run_case("65,536 bins", x, 65536, args.kw, args.repeat)
    del x, one_bin
    for kernel in ("bspline", "logistic"):
        ok &= run_mi_case(args.mi_size, args.mi_bins, kernel, args.repeat)
    if not ok:
        sys.exit("results differ run to run")


if __name__ == "__main__":
    main()
