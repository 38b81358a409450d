#!/usr/bin/env bash
# manager_fleet_test.sh with the manager's store on a real PostgreSQL server that the test
# starts (postgres_lib.sh): the same fleet, the same checks.
MANAGER_DB=postgres
# shellcheck source=manager_fleet_test.sh
source "$(dirname "$0")/manager_fleet_test.sh"
