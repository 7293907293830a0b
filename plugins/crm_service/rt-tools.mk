# Request Tracker 5 from Debian, the helpdesk the customer-service plugin (plugins/crm_service)
# syncs with: its tests start their own RT (standalone_httpd on loopback and a free port, on a
# copy of the packaged SQLite database, with a private configuration directory; see
# plugins/crm_service/tests/rt_server.py) and deliver mail to it with rt-mailgate. RT pulls in a
# mail server (exim4, Debian's default MTA) and a no-op request-tracker5 service: both are stopped
# and disabled right after installing, so no system MTA listens on port 25.
#
# Included by the main Makefile:  include plugins/crm_service/rt-tools.mk
RT_PACKAGES := request-tracker5 rt5-db-sqlite rt5-standalone rt5-clients
RT_SERVICES := request-tracker5 exim4

.PHONY: rt-tools

# The packages of RT_PACKAGES, when one of them is missing (RT and its Perl modules: large, about 40 s).
rt-tools:
	@if [ "$$(dpkg-query -W -f='$${Status}\n' $(RT_PACKAGES) 2>/dev/null | grep -c '^install ok installed$$')" -eq "$(words $(RT_PACKAGES))" ]; then :; else \
		echo "Request Tracker 5 missing: installing $(RT_PACKAGES)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(RT_PACKAGES) >/dev/null || exit 1; \
		if [ -d /run/systemd/system ]; then \
			$$SUDO systemctl disable --now $(RT_SERVICES) >/dev/null 2>&1 || true; \
		else \
			for s in $(RT_SERVICES); do \
				$$SUDO service $$s stop >/dev/null 2>&1 || true; \
				$$SUDO update-rc.d $$s disable >/dev/null 2>&1 || true; \
			done; \
		fi; \
	fi
	@test -f /var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb || { \
		echo "RT is installed but has no packaged SQLite database: run dpkg-reconfigure request-tracker5 (database type sqlite3)"; exit 1; }
