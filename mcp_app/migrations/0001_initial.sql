-- The personal-assistant data of one tenant. Runs with search_path set to the tenant schema,
-- so every name below lands in tenant_<id>. Every table carries owner_id and forces row-level
-- security: a query that forgets its WHERE still sees only the caller's rows, because the app
-- runs each transaction as a NOLOGIN role without BYPASSRLS and sets mcp.user_id locally.

CREATE TABLE status (
    owner_id   text PRIMARY KEY DEFAULT current_setting('mcp.user_id', true),
    status     text NOT NULL DEFAULT 'available'
               CHECK (status IN ('available', 'busy', 'away', 'do_not_disturb', 'offline')),
    mood       text CHECK (length(mood) <= 100),
    focus      text CHECK (length(focus) <= 200),
    note       text CHECK (length(note) <= 500),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'on_hold', 'completed', 'archived')),
    due_date    date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_owner_idx ON projects (owner_id, status);

CREATE TABLE project_tasks (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    done       boolean NOT NULL DEFAULT false,
    due_date   date,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX project_tasks_project_idx ON project_tasks (project_id);

CREATE TABLE todos (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id     text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    notes        text NOT NULL DEFAULT '' CHECK (length(notes) <= 5000),
    priority     text NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done')),
    due_date     date,
    project_id   uuid REFERENCES projects (id) ON DELETE SET NULL,
    completed_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX todos_owner_due_idx ON todos (owner_id, status, due_date);

CREATE TABLE calendar_events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    location    text NOT NULL DEFAULT '' CHECK (length(location) <= 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at)
);
CREATE INDEX calendar_events_owner_start_idx ON calendar_events (owner_id, starts_at);

CREATE TABLE documents (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id     text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    kind         text NOT NULL CHECK (kind IN ('text', 'upload', 'link')),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    -- Searchable text: the body of a text document or of a text/* upload, a link's description.
    content      text NOT NULL DEFAULT '',
    content_type text NOT NULL,
    size_bytes   bigint NOT NULL DEFAULT 0,
    sha256       text,
    data         bytea,
    url          text CHECK (url IS NULL OR url ~ '^https?://'),
    tags         text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') ||
        setweight(to_tsvector('english', left(content, 500000)), 'B')
    ) STORED
);
CREATE INDEX documents_owner_created_idx ON documents (owner_id, created_at DESC);
CREATE INDEX documents_search_idx ON documents USING gin (search);

-- Append-only: the tenant role gets SELECT and INSERT only (see db.py grants).
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    tool       text NOT NULL CHECK (length(tool) <= 100),
    target_id  text CHECK (length(target_id) <= 100),
    outcome    text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
    request_id text CHECK (length(request_id) <= 200),
    detail     text NOT NULL DEFAULT '' CHECK (length(detail) <= 300)
);
CREATE INDEX audit_events_at_idx ON audit_events (at DESC);

-- Row-level security. Every policy also requires mcp.tenant_schema to name THIS schema (baked in
-- here from current_schema(), which the migration runner sets to the tenant's), so a statement
-- that reaches another tenant's schema by name sees nothing even though one role serves all.
-- FORCE binds the table owner too; %I and %L quote what they insert.
DO $$
DECLARE
    t text;
    mine text := format('current_setting(''mcp.tenant_schema'', true) = %L', current_schema());
    owner text := 'owner_id = current_setting(''mcp.user_id'', true)';
BEGIN
    FOREACH t IN ARRAY ARRAY['status', 'projects', 'project_tasks', 'todos', 'calendar_events', 'documents', 'audit_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['status', 'projects', 'project_tasks', 'todos', 'calendar_events', 'documents'] LOOP
        EXECUTE format('CREATE POLICY owner_only ON %I USING (%s AND %s) WITH CHECK (%s AND %s)', t, mine, owner, mine, owner);
    END LOOP;
    -- Audit: everyone writes rows as themselves; reading the whole tenant's log needs
    -- mcp.is_admin, which the app sets only for callers holding the admin permission.
    EXECUTE format(
        'CREATE POLICY audit_insert_own ON audit_events FOR INSERT '
        'WITH CHECK (%s AND user_id = current_setting(''mcp.user_id'', true))', mine);
    EXECUTE format(
        'CREATE POLICY audit_read ON audit_events FOR SELECT '
        'USING (%s AND (user_id = current_setting(''mcp.user_id'', true) '
        'OR current_setting(''mcp.is_admin'', true) = ''on''))', mine);
END
$$;
