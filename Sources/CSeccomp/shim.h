// libseccomp, from Debian's libseccomp-dev (found with pkg-config). Only otk's
// seccomp compiler uses it; otk-launcher loads the exported program and never links it.
#include <seccomp.h>
