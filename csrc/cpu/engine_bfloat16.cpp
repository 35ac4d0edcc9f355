// The CPU engine for bfloat16 (a file per dtype: they compile in parallel).
#include "engine_impl.h"

template struct softhist::cpu::Engine<torch::headeronly::BFloat16, float>;
