// Runs a TorchScript model exported from Python (export_model.py) with no
// Python: forward, first and second derivatives of a loss on its histogram.
//
//   softhist_deploy model.pt < samples.txt
//
// Reads float64 samples (whitespace-separated) from stdin; takes the loss
// sum(hist^2) and prints, one line each (name: values):
//   hist          the model's histogram of the samples
//   grad_shift    d loss / d shift (the model's parameter)
//   grad_input    d loss / d samples
//   grad2_shift   d^2 loss / d shift^2 (double backward)
//   direct_diff   max |hist - softhist::histc(samples + shift)|: the C++ API
//                 agrees with the model
//
// The ops and their autograd come from linking SofthistExt::SofthistExt; the
// program loads no library at run time.
#include <softhist_ext/softhist.h>
#include <torch/autograd.h>
#include <torch/script.h>

#include <cstdio>
#include <iostream>
#include <vector>

namespace {

void print(const char* name, const torch::Tensor& t) {
  const torch::Tensor flat = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  std::printf("%s:", name);
  const double* p = flat.data_ptr<double>();
  for (int64_t i = 0; i < flat.numel(); ++i) std::printf(" %.17g", p[i]);
  std::printf("\n");
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

    print("hist", hist);
    print("grad_shift", grads[0]);
    print("grad_input", grads[1]);
    print("grad2_shift", grad2_shift);
    print("direct_diff", (hist - direct).abs().max());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  return 0;
}
