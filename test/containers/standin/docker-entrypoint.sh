#!/bin/sh
# The official Node.js image's entrypoint, as the stand-in node base ships it: a first argument
# that is an option (-e, --version) or not a command runs under node; anything else is
# exec'd as is, so `node dist/src/cli.js serve` stays PID 1.
set -e

# The last test is a workaround for a dash bug (https://bugs.debian.org/874264): a file
# argument that exists but is not executable is a script for node.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] \
  || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
