#!/bin/sh
# Headless Chromium for the browser test (tests/server/test_browser.py): the Debian
# packages chromium + chromium-driver, installed only when /usr/bin/chromium is absent.
set -e
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_browser: /usr/bin/chromium is missing and this is not root; the browser test will be skipped" \
         "(install it with: sudo apt-get install -y chromium chromium-driver)" >&2
    exit 0
fi
echo "install_browser: installing chromium and chromium-driver (a minute or two)..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
