#!/usr/bin/env bash
# Install the desktop launcher (double-click start) for the current user.
# Usage: packaging/install-desktop-entry.sh [PATH_TO_GALDESK_EXECUTABLE]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
exe="${1:-$here/.venv/bin/galdesk}"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/resources/icons/galdesk.svg" "$icons/galdesk.svg"
sed "s|^Exec=galdesk|Exec=$exe|" "$here/packaging/galdesk.desktop" > "$apps/galdesk.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "installed $apps/galdesk.desktop (Exec=$exe)"
