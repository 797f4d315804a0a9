#!/usr/bin/env bash
# The Debian packages the test suite needs, installed when missing.
set -euo pipefail

# Debian packages: PortAudio and libsndfile (audio I/O), PulseAudio (the
# virtual microphone and speaker), flite (generated speech) and
# pocketsphinx-testdata (real read speech). apt runs only when one is missing,
# so a machine that has them all needs neither root nor the network for it.
packages="libportaudio2 libsndfile1 pulseaudio pulseaudio-utils flite pocketsphinx-testdata"
if command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq
        # shellcheck disable=SC2086  # one word per package
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
    fi
fi
