#!/usr/bin/env bash
# Refresh the console's front-end libraries from the npm registry at the versions pinned in
# services/console/assets/package-lock.json, and copy what the console serves, with each
# licence, into services/console/static/vendor/ (committed: the console needs no npm to run).
set -euo pipefail
cd "$(dirname "$0")/../../services/console/assets"
npm ci --no-audit --no-fund --ignore-scripts
V=../static/vendor
rm -rf "$V" && mkdir -p "$V/leaflet/images"
cp node_modules/htmx.org/dist/htmx.min.js "$V/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$V/htmx.LICENSE"
cp node_modules/echarts/dist/echarts.common.min.js "$V/echarts.common.min.js"
cp node_modules/echarts/LICENSE "$V/echarts.LICENSE"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$V/leaflet/"
cp node_modules/leaflet/dist/images/*.png "$V/leaflet/images/"
cp node_modules/leaflet/LICENSE "$V/leaflet/LICENSE"
cp node_modules/axe-core/axe.min.js "$V/axe.min.js"   # for the accessibility test only
cp node_modules/axe-core/LICENSE "$V/axe.LICENSE"
node -e 'const l=require("./package-lock.json").packages;for(const[k,v]of Object.entries(l))if(k)console.log(k.replace("node_modules/",""),v.version)' > "$V/VERSIONS"
echo "vendor assets in services/console/static/vendor/:"; cat "$V/VERSIONS"
