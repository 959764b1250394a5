-- The full assistant surface (issue 14): preferences (the caller's time zone), due dates with a
-- time, task completion, event zones, all-day events, recurrence and .ics UIDs, and one keyword
-- search index per kind. Runs with search_path set to the tenant schema, like 0001.

-- Accent folding without the unaccent extension (the embedded PostgreSQL 16 ships without it):
-- NFD splits "é" into "e" + a combining mark, the marks go, and the few letters NFD does not
-- split are spelled out. IMMUTABLE so the generated search columns below may use it.
CREATE FUNCTION fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(regexp_replace(normalize(
        replace(replace(replace(replace(replace(replace(replace(replace(value,
            'ß', 'ss'), 'ẞ', 'ss'), 'æ', 'ae'), 'Æ', 'ae'), 'œ', 'oe'), 'Œ', 'oe'), 'ø', 'o'), 'Ø', 'o'),
        NFD), '[\u0300-\u036f]', '', 'g'));

-- array_to_string is only STABLE in general; for text[] it is a pure function of its input.
CREATE FUNCTION tag_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_to_string(tags, ' ');

CREATE TABLE preferences (
    owner_id   text PRIMARY KEY DEFAULT current_setting('mcp.user_id', true),
    timezone   text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A due date may carry a time: due_at is that instant, due_date stays the day it falls on.
ALTER TABLE todos ADD COLUMN due_at timestamptz;
ALTER TABLE projects ADD COLUMN due_at timestamptz;
ALTER TABLE project_tasks ADD COLUMN due_at timestamptz;
ALTER TABLE project_tasks ADD COLUMN completed_at timestamptz;
ALTER TABLE project_tasks ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE calendar_events ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE calendar_events ADD COLUMN all_day boolean NOT NULL DEFAULT false;
-- The zone the event was written in: recurrence repeats wall-clock times there (DST-correct).
ALTER TABLE calendar_events ADD COLUMN timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64);
ALTER TABLE calendar_events ADD COLUMN recurrence text CHECK (length(recurrence) <= 1000);
ALTER TABLE calendar_events ADD COLUMN exdates timestamptz[] NOT NULL DEFAULT '{}' CHECK (cardinality(exdates) <= 1000);
ALTER TABLE calendar_events ADD COLUMN uid text CHECK (length(uid) BETWEEN 1 AND 255);
CREATE UNIQUE INDEX calendar_events_uid_idx ON calendar_events (owner_id, uid);
CREATE INDEX calendar_events_recurring_idx ON calendar_events (owner_id, starts_at) WHERE recurrence IS NOT NULL;

ALTER TABLE documents ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Keyword search: the 'simple' configuration (no English stemming, so German and French words
-- match as written) over folded text; titles weigh more than bodies.
ALTER TABLE todos ADD COLUMN keywords tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', fold(title)), 'A') || setweight(to_tsvector('simple', fold(notes)), 'B')
) STORED;
ALTER TABLE projects ADD COLUMN keywords tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', fold(name)), 'A') || setweight(to_tsvector('simple', fold(description)), 'B')
) STORED;
ALTER TABLE project_tasks ADD COLUMN keywords tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', fold(title)), 'A')
) STORED;
ALTER TABLE calendar_events ADD COLUMN keywords tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', fold(title)), 'A') ||
    setweight(to_tsvector('simple', fold(location)), 'B') ||
    setweight(to_tsvector('simple', fold(description)), 'B')
) STORED;
ALTER TABLE documents ADD COLUMN keywords tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', fold(title)), 'A') ||
    setweight(to_tsvector('simple', fold(tag_text(tags))), 'A') ||
    setweight(to_tsvector('simple', fold(left(content, 500000))), 'B')
) STORED;
CREATE INDEX todos_keywords_idx ON todos USING gin (keywords);
CREATE INDEX projects_keywords_idx ON projects USING gin (keywords);
CREATE INDEX project_tasks_keywords_idx ON project_tasks USING gin (keywords);
CREATE INDEX calendar_events_keywords_idx ON calendar_events USING gin (keywords);
CREATE INDEX documents_keywords_idx ON documents USING gin (keywords);
CREATE INDEX documents_tags_idx ON documents USING gin (tags);

-- Row-level security on the new table, exactly as 0001 does for the others.
DO $$
DECLARE
    mine text := format('current_setting(''mcp.tenant_schema'', true) = %L', current_schema());
    owner text := 'owner_id = current_setting(''mcp.user_id'', true)';
BEGIN
    ALTER TABLE preferences ENABLE ROW LEVEL SECURITY;
    ALTER TABLE preferences FORCE ROW LEVEL SECURITY;
    EXECUTE format('CREATE POLICY owner_only ON preferences USING (%s AND %s) WITH CHECK (%s AND %s)', mine, owner, mine, owner);
END
$$;
