// The int8 KV pool (core/kv-type.h) through every kernel set this CPU runs.
#pragma once

namespace flotilla::test {

bool check_kv_int8();  // prints one PASS/FAIL line per check; true when all pass

}  // namespace flotilla::test
