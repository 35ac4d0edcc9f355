// The CPU engine for float32 (a file per dtype: they compile in parallel).
#include "engine_impl.h"

template struct softhist::cpu::Engine<float, float>;
