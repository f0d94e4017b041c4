// emu_selftest.h: what the emulator's model self-tests share (emu_selftest.cc: --selftest-wgmma;
// emu_selftest_tma.cc and emu_selftest_tma_faults.cc: --selftest-tma).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>

namespace emu_test {

// Runs body in a child process (so that an emulator fault ends only it); its stderr, exit
// status (body's return value) and whether it aborted come back. False if it could not fork.
bool run_child(const std::function<int()>& body, std::string* err, int* status, bool* aborted);

// One line per check ("ok  " or "FAIL", the suite, the check, why it failed) and the counts.
struct Tally {
  const char* suite;
  int passed = 0, failed = 0;
  void report(bool ok, const std::string& name, const std::string& why = "") {
    ++(ok ? passed : failed);
    std::printf("%s  %s self-test: %s%s%s\n", ok ? "ok  " : "FAIL", suite, name.c_str(), why.empty() ? "" : ": ",
                why.c_str());
    std::fflush(stdout);
  }
};

// A check whose body must abort with an emulator fault (EMU FAULT ...) naming `kernel` and
// containing one of `wants`.
inline void expect_fault(Tally& t, const std::string& name, const char* kernel, std::initializer_list<const char*> wants,
                         const std::function<void()>& body) {
  std::string err;
  int status = -1;
  bool aborted = false;
  const bool ran = run_child(
      [&] {
        body();
        return 0;
      },
      &err, &status, &aborted);
  const size_t at = err.find("EMU FAULT");
  const std::string line = at == std::string::npos ? err.substr(0, err.find('\n'))
                                                    : err.substr(at, err.find('\n', at) - at);
  bool ok = ran && aborted && at != std::string::npos && err.find(std::string("EMU FAULT in ") + kernel) != std::string::npos;
  bool want = false;
  for (const char* w : wants) want = want || err.find(w) != std::string::npos;
  ok = ok && want;
  // EMU_SELFTEST_VERBOSE=1: the fault's message for the passing checks too.
  const char* verbose = std::getenv("EMU_SELFTEST_VERBOSE");
  t.report(ok, name, ok ? (verbose && *verbose == '1' ? line : "") : (aborted ? "aborted with: " + line : "did not abort: " + line));
}

// A check whose body runs in a child and must return 0 without a fault; its stderr's last line
// (or the body's own complaint) says why not.
inline void expect_pass(Tally& t, const std::string& name, const std::function<std::string()>& body) {
  std::string err;
  int status = -1;
  bool aborted = false;
  const bool ran = run_child(
      [&] {
        const std::string why = body();
        std::fprintf(stderr, "%s", why.c_str());
        return why.empty() ? 0 : 1;
      },
      &err, &status, &aborted);
  std::string line = err;
  const size_t at = err.find("EMU FAULT");
  if (at != std::string::npos) line = err.substr(at, err.find('\n', at) - at);
  else if (status != 0 && err.rfind('\n', err.size() - 2) != std::string::npos) line = err.substr(err.rfind('\n', err.size() - 2) + 1);
  t.report(ran && status == 0 && !aborted, name, status == 0 && !aborted ? "" : line);
}

}  // namespace emu_test

int emu_selftest_wgmma();  // emu_selftest.cc
int emu_selftest_tma();    // emu_selftest_tma.cc
