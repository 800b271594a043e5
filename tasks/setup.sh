#!/usr/bin/env bash
# One-time set-up, asks nothing:
#
#   bash tasks/setup.sh
#
# 1. Optional system libraries, through the system's own package manager, when this shell may use
#    it without a password (root, or sudo -n): OpenBLAS, on which the tensor stages run their
#    matmuls about 2x faster (the demo sweep took 29 min with it and 52 min without it on 2 cores),
#    and Chromium, which renders the PNG plots and the report screenshots (SVG plots and the HTML
#    report need nothing). Where it cannot install them it prints the command that would, and goes
#    on: the project works without them. SETUP_SYSTEM=0 skips this step.
# 2. `npm ci`: the pinned Deno binary (package-lock.json), then, through package.json's
#    postinstall, `deno install --frozen`: every npm package the project imports, as deno.lock pins
#    them.
# 3. One line per optional library saying whether the tensor stages will find it.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }

install_system() {
  local sudo="" cmd="" manager="" may=0
  if [ "$(id -u)" -eq 0 ]; then
    may=1
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
    may=1
  fi
  if command -v apt-get >/dev/null 2>&1; then
    cmd="apt-get install -y -q --no-install-recommends libopenblas0-pthread chromium"
    if [ "$may" -eq 1 ]; then
      say "installing libopenblas0-pthread (native matmuls) and chromium (PNG plots) with apt-get"
      $sudo apt-get update -q >/dev/null 2>&1 || say "apt-get update failed; trying the install anyway"
      if DEBIAN_FRONTEND=noninteractive $sudo $cmd >/dev/null 2>&1; then return 0; fi
      say "apt-get install failed; trying each package alone"
      for pkg in libopenblas0-pthread chromium; do
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
          "$pkg" >/dev/null 2>&1 || say "$pkg did not install"
      done
      return 0
    fi
    cmd="sudo apt-get update && sudo $cmd"
  else
    if command -v dnf >/dev/null 2>&1; then
      manager=dnf cmd="dnf install -y openblas-threads chromium"
    elif command -v pacman >/dev/null 2>&1; then
      manager=pacman cmd="pacman -S --needed --noconfirm openblas chromium"
    elif [ "$(uname -s)" = "Darwin" ]; then
      say "macOS: matmuls use Apple's Accelerate, nothing to install; for PNG plots: brew install --cask chromium and set CHROMIUM_PATH"
      return 0
    else
      say "no apt-get, dnf or pacman here: install OpenBLAS and Chromium by hand for the fast path and PNG plots"
      return 0
    fi
    if [ "$may" -eq 1 ]; then
      say "installing OpenBLAS and Chromium with $manager: $cmd"
      $sudo $cmd >/dev/null 2>&1 || say "$manager install failed"
      return 0
    fi
    cmd="sudo $cmd"
  fi
  say "not root and no password-less sudo: skipping the optional system libraries; to add them run"
  say "  $cmd"
}

if [ "${SETUP_SYSTEM:-1}" != "0" ]; then install_system; fi

command -v npm >/dev/null 2>&1 || {
  say "npm not found: install Node.js (18 or newer) with npm first"
  exit 1
}
say "npm ci (the pinned Deno, then every npm package in deno.lock)"
npm ci --no-audit --no-fund || {
  say "npm ci failed"
  exit 1
}

# The tensor stages' own look-up (mod/backend/blas.ts), so this line says what they will find.
node_modules/.bin/deno eval --quiet '
  const { loadBlas } = await import("./mod/backend/blas.ts");
  const r = loadBlas();
  console.log(r.blas
    ? `setup: native BLAS: ${r.blas.config.split(" ").slice(0, 2).join(" ")} (${r.blas.path}); matmuls run on it`
    : `setup: native BLAS: none (${r.reason}); the tensor stages run about 2x slower and say so at their start`);
' || say "could not check for a native BLAS"
# The project's native kernels (the SAE step, Adam, the cross-entropy), built for this CPU.
if bash tasks/build_native.sh; then
  say "native kernels: built (mod/backend/native/build/librtd_native.so)"
else
  say "native kernels: not built; the tensor stages fall back to tfjs (slower) and say so"
fi
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$chromium" ]; then
  say "Chromium: $chromium (PNG plots, report screenshots)"
else
  say "Chromium: not found at $chromium; plots are SVG only and the PNG tests skip"
fi
say "done: npx deno task test, npx deno task sweep"
