"""leanstack's Pulumi components: one ComponentResource per module.

Each can be used on its own from another Pulumi program:

    from leanstack.components.database import Database, DatabaseArgs
    db = Database("db", DatabaseArgs(instance_class="db.t4g.small"), stack="prod", network=net)

Type tokens are `leanstack:index:<ClassName>`.
"""
