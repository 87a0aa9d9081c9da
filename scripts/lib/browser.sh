# Headless Chromium and ChromeDriver for the web console's browser tests (Debian's packages).

# ensure_chromium: installs Debian's chromium and chromium-driver when missing; exports
# CHROMEDRIVER for the tests.
ensure_chromium() {
  if [ -z "${CHROMEDRIVER:-}" ]; then
    if command -v chromedriver >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
      CHROMEDRIVER="$(command -v chromedriver)"
    else
      command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
        || die "chromium and chromedriver are missing and cannot be installed here: install Debian's chromium and chromium-driver (or set CHROMEDRIVER)."
      say "installing Debian's chromium and chromium-driver (for the console's browser tests)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        || die "apt-get install chromium chromium-driver failed"
      CHROMEDRIVER="$(command -v chromedriver)"
    fi
  fi
  export CHROMEDRIVER
}
