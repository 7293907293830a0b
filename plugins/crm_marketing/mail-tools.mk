# The mail programs the marketing plugin (plugins/crm_marketing) is tested against, from Debian:
# exim4 (real RFC 3464 bounces from a private config) and dovecot's IMAP server (the bounce
# mailbox). The tests start their own instances on loopback and free ports (see
# plugins/crm_marketing/tests/counterparts/mailservers.py); the system services the packages
# come with are stopped and disabled right after installing, so no system MTA listens on port 25
# and no system IMAP server on 143 besides the tests' own.
#
# Included by the main Makefile:  include plugins/crm_marketing/mail-tools.mk
MAIL_PACKAGES := exim4-daemon-light dovecot-imapd
MAIL_SERVICES := exim4 dovecot

.PHONY: mail-tools

# The packages of MAIL_PACKAGES, when one of them is missing (~10 MB, ~15 s).
mail-tools:
	@if [ "$$(dpkg-query -W -f='$${Status}\n' $(MAIL_PACKAGES) 2>/dev/null | grep -c '^install ok installed$$')" -eq "$(words $(MAIL_PACKAGES))" ]; then :; else \
		echo "exim4 or dovecot missing: installing $(MAIL_PACKAGES)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(MAIL_PACKAGES) >/dev/null || exit 1; \
		if [ -d /run/systemd/system ]; then \
			$$SUDO systemctl disable --now $(MAIL_SERVICES) >/dev/null 2>&1 || true; \
		else \
			for s in $(MAIL_SERVICES); do \
				$$SUDO service $$s stop >/dev/null 2>&1 || true; \
				$$SUDO update-rc.d $$s disable >/dev/null 2>&1 || true; \
			done; \
		fi; \
	fi
