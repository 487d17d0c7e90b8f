"""Off-site backups and restore drills: the host tool and the files that install it."""
