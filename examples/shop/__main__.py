"""A shop's own Pulumi program that uses leanstack as a library: a network, a database, alerts.

Nothing here comes from the leanstack repository's stacks or program: the config is the shop's
(`shop:` keys in Pulumi.<stack>.yaml), and the components come from the installed package
(`pip install leanstack-*.whl`). The Args validate themselves, so a typo in the database class
stops the program with one line before anything is created.
"""

from __future__ import annotations

import pulumi

from leanstack.components import Alerts, AlertsArgs, Database, DatabaseArgs, Network, NetworkArgs

config = pulumi.Config("shop")
stack = pulumi.get_stack()
region = pulumi.Config("aws").require("region")

alerts = Alerts("alerts", AlertsArgs(email=config.require("alertEmail")), stack=stack, region=region)
network = Network("network", NetworkArgs(cidr="10.40.0.0/16"))
orders = Database(
    "orders",
    DatabaseArgs(
        instance_class=config.get("databaseClass") or "db.t4g.micro",
        database_name="orders",
        # A throw-away example: no deletion protection, no final snapshot, not `protect`ed.
        deletion_protection=False,
        final_snapshot=False,
        protect=False,
    ),
    stack=stack,
    network=network,
    alarm_topic_arn=alerts.topic_arn,
)

pulumi.export("databaseAddress", orders.address)
pulumi.export("alertTopicArn", alerts.topic_arn)
