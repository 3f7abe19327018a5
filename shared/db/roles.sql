-- The least-privilege login the app connects as (default name ghost_pirates_app): DML on the app
-- tables, USAGE on their sequences, nothing else. Migrations run as the server admin, who owns
-- every table; this file is applied by scripts/apply_db_roles.py as that admin after every
-- migration run (scripts/deploy.sh step 3) and is idempotent: running it again converges the
-- grants and sets the password held in Key Vault (postgres-app-password).
--
-- Placeholders are filled by the loader with psycopg sql.Identifier / sql.Literal:
--   app_role (identifier), app_role_name (literal), password (literal: a SCRAM verifier computed
--   client-side, so the clear password never reaches the server or its logs), database (identifier).
-- This file must contain no other curly braces.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {app_role_name}) THEN
        CREATE ROLE {app_role} LOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- a concurrent deploy created it between the check and CREATE ROLE
END
$roles$;

-- Refuse an app role that is more than a plain login: the admin of a managed server cannot
-- remove SUPERUSER, REPLICATION or BYPASSRLS, and a membership would inherit other rights.
DO $roles$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles
               WHERE rolname = {app_role_name} AND (rolsuper OR rolreplication OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role % has SUPERUSER, REPLICATION or BYPASSRLS: not a least-privilege role', {app_role_name};
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.member
               WHERE r.rolname = {app_role_name}) THEN
        RAISE EXCEPTION 'role % is a member of another role: revoke that membership first', {app_role_name};
    END IF;
    IF {app_role_name} = current_user THEN
        RAISE EXCEPTION 'the app role must not be the role applying this file (%)', current_user;
    END IF;
END
$roles$;

ALTER ROLE {app_role} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD {password};

-- Nobody but owners creates objects in the app schema, and no one gets temporary tables by default
-- (PostgreSQL grants TEMPORARY on every database to PUBLIC).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC;

-- Converge: take everything away, then grant exactly what the app needs. One transaction, so the
-- running app never sees a moment without its rights.
REVOKE ALL ON DATABASE {database} FROM {app_role};
GRANT CONNECT ON DATABASE {database} TO {app_role};
REVOKE ALL ON SCHEMA public FROM {app_role};
GRANT USAGE ON SCHEMA public TO {app_role};

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app_role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app_role};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app_role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app_role};

-- The migration journal is readable (which version runs) but only migrations write it.
DO $roles$
BEGIN
    IF to_regclass('public.schema_migrations') IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON TABLE public.schema_migrations FROM %I', {app_role_name});
    END IF;
END
$roles$;

-- Tables and sequences that later migrations create (as this same admin) get the same rights
-- without waiting for this file to run again.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app_role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app_role};
