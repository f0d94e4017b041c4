// cuda_runtime.h (emulator stub): the runtime API plus the device-side language pieces (see emu.h).
#pragma once
#include "cuda_runtime_api.h"
#include "emu.h"
