// The CPU engine for float16 (a file per dtype: they compile in parallel).
#include "engine_impl.h"

template struct softhist::cpu::Engine<torch::headeronly::Half, float>;
