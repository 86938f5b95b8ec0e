#!/usr/bin/env bash
# Installs Debian packages for the project's build and test scripts, the one
# way they all do it: quietly, with sudo when not root, no recommends, the
# package lists refreshed only when the first try fails.
#
#   tools/apt_install.sh WHO "HINT" PACKAGE...
#
# WHO names the calling script in messages; HINT says what to install by hand
# where there is no apt-get (exit 1 then). Exit status: apt-get's.
set -uo pipefail
who="$1" hint="$2"
shift 2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: no apt-get; $hint" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
  || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
