#!/usr/bin/env bash
# The deployment's promises checked with the real Vercel CLI, as an operator builds and Vercel
# runs it (not part of `npm test`: it needs the CLI from the npm registry and takes ~3 minutes):
# - a production or preview build without API_KEYS fails naming it; a function run without it
#   anyway answers no customer; with keys, no token and a wrong one get 401, the key 200;
# - after a production build, preview builds that reach the production database through
#   `localhost`, a `?host=` override, or an unpooled URL on a TEMPLATE copy all fail, and apply
#   nothing; two preview builds on a database of their own both succeed;
# - the runtime written is Node 22 or newer whatever Node builds it, and the function's size;
# - a feed consumer's mirror during 800 concurrent requests and after `npm run forget`.
#
#   test/vercel/check.sh            PG=postgres://me@host:5432 NODE=/path/to/node24 test/vercel/check.sh
#
# It clones this repository's HEAD twice into a temporary folder: production is built from the
# commit before the newest migration, so that a preview that migrated production would show.
# Databases vercel_check_{prod,branch,preview} are dropped and created on PG.
set -uo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
PG=${PG:-postgres://postgres@127.0.0.1:5432}
NODE=${NODE:-node}
KEY=check-key-$(openssl rand -hex 12)
VERCEL="npx -y vercel@58.10.0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for db in prod branch preview; do psql -qX "$PG/postgres" -c "drop database if exists vercel_check_$db with (force)" 2>/dev/null; done
psql -qX "$PG/postgres" -c "create database vercel_check_prod" -c "create database vercel_check_preview"
git clone -q "$repo" "$work/new" && git clone -q "$repo" "$work/old"
newest_migration=$(git -C "$repo" log -n1 --format=%H --diff-filter=A -- 'drizzle/0*.sql')
git -C "$work/old" checkout -q "$newest_migration~1"
for dir in "$work/new" "$work/old"; do
  (cd "$dir" && npm ci --no-audit --no-fund >/dev/null 2>&1 && mkdir -p .vercel &&
    echo '{"projectId":"prj_identify","orgId":"team_identify","settings":{}}' >.vercel/project.json)
done

build() { # <checkout> <prod|preview> VAR=value...: runs vercel build, prints its exit and verdict
  local dir=$1 target=$2
  shift 2
  (cd "$dir" && env -u VERCEL "$@" $VERCEL build $([ "$target" = prod ] && echo --prod) --yes >"$work/build.log" 2>&1)
  echo "  exit $?: $(grep -E 'Invalid environment|Refusing|migration\(s\) applied' "$work/build.log" | head -1 | cut -c1-200)"
}
applied() { psql -tAqX "$PG/vercel_check_prod" -c "select count(*) from drizzle.__drizzle_migrations"; }
func() { echo "$1/.vercel/output/functions/api/identify.func"; }
runtime() { grep -o '"runtime": *"[^"]*"' "$(func "$1")/.vc-config.json"; }

echo "Production build without API_KEYS:"
build "$work/old" prod VERCEL_ENV=production DATABASE_URL="$PG/vercel_check_prod"
echo "Preview build without API_KEYS:"
build "$work/new" preview VERCEL_ENV=preview DATABASE_URL="$PG/vercel_check_preview"
echo "Production build with API_KEYS, from the commit before the newest migration was added:"
build "$work/old" prod VERCEL_ENV=production API_KEYS="$KEY" DATABASE_URL="$PG/vercel_check_prod"
echo "  production has $(applied) migrations"
psql -qX "$PG/postgres" -c "create database vercel_check_branch template vercel_check_prod"
host=$(node -e 'console.log(new URL(process.argv[1]).hostname)' "$PG")
port=$(node -e 'console.log(new URL(process.argv[1]).port || 5432)' "$PG")
user=$(node -e 'console.log(new URL(process.argv[1]).username)' "$PG")
echo "Preview build on production through localhost:"
build "$work/new" preview VERCEL_ENV=preview API_KEYS="$KEY" DATABASE_URL="postgres://$user@localhost:$port/vercel_check_prod"
echo "Preview build on production through an alias with ?host=:"
build "$work/new" preview VERCEL_ENV=preview API_KEYS="$KEY" ALLOW_PLAINTEXT_DATABASE=true \
  DATABASE_URL="postgres://$user@db-alias.internal:$port/vercel_check_prod?host=$host"
echo "Preview build with DATABASE_URL on production and DATABASE_URL_UNPOOLED on a TEMPLATE copy:"
build "$work/new" preview VERCEL_ENV=preview API_KEYS="$KEY" DATABASE_URL="$PG/vercel_check_prod" \
  DATABASE_URL_UNPOOLED="$PG/vercel_check_branch"
echo "  production still has $(applied) migrations (the preview's commit has $(ls "$work/new"/drizzle/0*.sql | wc -l))"
echo "Two preview builds on a database of their own:"
build "$work/new" preview VERCEL_ENV=preview API_KEYS="$KEY" DATABASE_URL="$PG/vercel_check_preview"
build "$work/new" preview VERCEL_ENV=preview API_KEYS="$KEY" DATABASE_URL="$PG/vercel_check_preview"
echo "Production build of HEAD:"
build "$work/new" prod VERCEL_ENV=production API_KEYS="$KEY" DATABASE_URL="$PG/vercel_check_prod"
echo "  built on $(node -v): $(runtime "$work/new"), $(du -sb "$(func "$work/new")" | cut -f1) bytes"

cd "$(func "$work/new")" || exit 1
quiet() { grep -v '^{"time"'; }
echo "The built function on $($NODE -v), production, with API_KEYS:"
VERCEL=1 VERCEL_ENV=production API_KEYS="$KEY" KEY="$KEY" DATABASE_URL="$PG/vercel_check_prod" "$NODE" "$repo/test/vercel/invoke.mjs" "$PWD/index.mjs" 2>&1 | quiet
for environment in production preview; do
  echo "The same function run without API_KEYS, $environment:"
  VERCEL=1 VERCEL_ENV=$environment KEY=x DATABASE_URL="$PG/vercel_check_prod" "$NODE" "$repo/test/vercel/invoke.mjs" "$PWD/index.mjs" 2>&1 | quiet
done
echo "A feed consumer, 800 concurrent requests, then npm run forget:"
VERCEL=1 VERCEL_ENV=production API_KEYS="$KEY" KEY="$KEY" DATABASE_URL="$PG/vercel_check_prod" CHECKOUT="$work/new" \
  "$NODE" "$repo/test/vercel/feed-mirror.mjs" "$PWD/index.mjs" 2>/dev/null | quiet
cd / && for db in prod branch preview; do psql -qX "$PG/postgres" -c "drop database if exists vercel_check_$db with (force)"; done
