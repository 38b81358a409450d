#!/usr/bin/env bash
# manager_bans_test.sh with the manager's store on a real PostgreSQL server that the test
# starts (postgres_lib.sh): the same fleet bans and commands, the same checks.
MANAGER_DB=postgres
# shellcheck source=manager_bans_test.sh
source "$(dirname "$0")/manager_bans_test.sh"
