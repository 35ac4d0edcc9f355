// Runs a TorchScript model exported from Python (export_model.py) with no
// Python: forward, first and second derivatives of a loss on its histogram.
//
//   softhist_deploy model.pt < samples.txt
//
// Reads float64 samples (whitespace-separated) from stdin; takes the loss
// sum(hist^2) and prints a summary, one line each:
//   hist          the model's histogram of the samples (all its bins)
//   grad_shift    d loss / d shift (the model's parameter)
//   grad2_shift   d^2 loss / d shift^2 (double backward)
//   grad_input    d loss / d samples: count, sum, largest magnitude and where,
//                 the first values
//   direct_diff   max |hist - softhist::histc(samples + shift)|: the C++ API
//                 agrees with the model
//
// The ops and their autograd come from linking SofthistExt::SofthistExt; the
// program loads no library at run time.
#include <softhist_ext/softhist.h>
#include <torch/autograd.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

namespace {

constexpr int64_t kShown = 8;  // values printed per tensor

// "name: n=N sum=S max_abs=M at=I values=v0 v1 ..." (the first kShown values),
// or "name: v" for one value.
void summary(const char* name, const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  const double* p = flat.data_ptr<double>();
  const int64_t n = flat.numel();
  std::printf("%s:", name);
  if (n == 1) {
    std::printf(" %.10g\n", p[0]);
    return;
  }
  const int64_t at = n == 0 ? 0 : flat.abs().argmax().item<int64_t>();
  std::printf(" n=%lld sum=%.10g max_abs=%.10g at=%lld values=", static_cast<long long>(n),
              flat.sum().item<double>(), n == 0 ? 0.0 : std::abs(p[at]),
              static_cast<long long>(at));
  for (int64_t i = 0; i < std::min(n, kShown); ++i) std::printf("%s%.10g", i ? " " : "", p[i]);
  std::printf(n > kShown ? " ...\n" : "\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.pt < SAMPLES.txt\n", argv[0]);
    return 2;
  }
  std::vector<double> samples;
  for (double v; std::cin >> v;) samples.push_back(v);
  if (!std::cin.eof()) {
    std::fprintf(stderr, "%s: stdin must hold numbers only (sample %zu is not one)\n", argv[0],
                 samples.size() + 1);
    return 2;
  }

  try {
    torch::jit::Module model = torch::jit::load(argv[1]);
    const torch::Tensor shift = model.attr("shift").toTensor();
    const torch::Tensor x = torch::tensor(samples, torch::kFloat64).requires_grad_();

    const torch::Tensor hist = model.forward({x}).toTensor();
    const torch::Tensor loss = hist.pow(2).sum();
    // create_graph keeps the backward differentiable, for the second derivative.
    const auto grads = torch::autograd::grad({loss}, {shift, x}, {}, /*retain_graph=*/true,
                                             /*create_graph=*/true);
    const torch::Tensor grad2_shift = torch::autograd::grad({grads[0]}, {shift})[0];

    const torch::Tensor direct =
        softhist::histc(x + shift, model.attr("bins").toInt(), model.attr("min").toDouble(),
                        model.attr("max").toDouble());

    summary("hist", hist);
    summary("grad_shift", grads[0]);
    summary("grad2_shift", grad2_shift);
    summary("grad_input", grads[1]);
    summary("direct_diff", (hist - direct).abs().max());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
