# Sourced by scripts/test: the browser tests (tests/browser) drive Debian's Chromium with
# Playwright, so install the `chromium` package when /usr/bin/chromium is missing. Quiet and
# idempotent; if it cannot be installed, the browser tests fail (they are never skipped).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian's chromium for the browser tests (apt-get)..." >&2
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    $SUDO apt-get install -y -qq chromium; } >/tmp/barstream-apt.log 2>&1; then
    echo "could not install chromium (see /tmp/barstream-apt.log): the browser tests will fail" >&2
  fi
fi
