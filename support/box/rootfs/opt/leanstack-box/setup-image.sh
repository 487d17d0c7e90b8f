#!/bin/sh
# leanstack box: run inside the image's root once, when the image is built.
set -eu

# PostgreSQL standing in for RDS: TCP on loopback with TLS only (RDS with rds.force_ssl), the
# superuser by its local socket only (the seed creates the app's role as RDS would).
cat >/etc/postgresql/15/main/conf.d/leanstack-box.conf <<'CONF'
listen_addresses = '127.0.0.1'
ssl = on
password_encryption = scram-sha-256
CONF
cat >/etc/postgresql/15/main/pg_hba.conf <<'CONF'
local   all   postgres                  peer
hostssl all   all       127.0.0.1/32    scram-sha-256
hostnossl all all       0.0.0.0/0       reject
CONF

# AL2023's postgresql17-server has its programs on PATH; Debian keeps them in a versioned dir.
for program in initdb pg_ctl postgres pg_controldata; do
  ln -sf "/usr/lib/postgresql/15/bin/$program" "/usr/local/bin/$program"
done

# AL2023's nginx package runs nginx as the user and group nginx (Debian's as www-data); the
# rendered nginx.conf and the TLS fetch script name them.
useradd --system --no-create-home --home-dir /var/lib/nginx --shell /usr/sbin/nologin nginx
# ...and has /var/lib/nginx/tmp for its temporary files (the rendered nginx.conf's temp_dir).
install -d -o nginx -g nginx -m 0770 /var/lib/nginx/tmp

# The aws CLI v1 from /usr/local (see support/box/packages.py PIP_PACKAGES).
cat >/usr/local/bin/aws <<'SH'
#!/bin/sh
exec /usr/bin/python3 -m awscli "$@"
SH
chmod 755 /usr/local/bin/aws

# The session user the SSM agent creates on the real host (sudo, no journal groups).
useradd --create-home --shell /bin/bash ssm-user

# Where `python -m support.box up` puts the NoCloud seed and moto's seed before the first boot.
mkdir -p /var/lib/cloud/seed/nocloud /etc/leanstack-box

# vfs: overlayfs cannot be mounted inside this unprivileged container.
mkdir -p /etc/docker
echo '{"storage-driver": "vfs"}' >/etc/docker/daemon.json

# As on AL2023: nginx and docker are installed, not started, until cloud-init or a unit asks.
systemctl disable nginx.service docker.service docker.socket apt-daily.timer apt-daily-upgrade.timer
systemctl enable leanstack-box-aws.service leanstack-box-seed.service
# A container has no consoles.
systemctl mask getty@tty1.service console-getty.service
