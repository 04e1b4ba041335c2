// The thread pool under many small jobs: every item runs exactly once, with as many threads as cores
// and with 4x more threads than cores (the oversubscribed case), and what a job costs.
#pragma once

namespace flotilla::test {

bool check_pool();

}  // namespace flotilla::test
