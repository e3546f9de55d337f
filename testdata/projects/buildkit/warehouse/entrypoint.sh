#!/bin/busybox sh
exec dagster code-server start "$@"
