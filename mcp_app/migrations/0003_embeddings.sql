-- Semantic search (issue 15): vectors of every searchable row, and the queue that computes them.
-- Runs with search_path set to the tenant schema, like 0001; pgvector lives in schema public
-- (db.ensure_vector_extension creates it once per database), so its names are qualified.

-- One row per chunk of an item's text and model. `embedding` has no fixed size so another
-- backend's dimension fits; each dimension gets its own partial HNSW index over a cast (384 here,
-- others made by the worker when it first stores one).
CREATE TABLE embeddings (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id   text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    kind       text NOT NULL CHECK (kind IN ('todo', 'project', 'project_task', 'event', 'document')),
    item_id    uuid NOT NULL,
    chunk      integer NOT NULL CHECK (chunk >= 0),
    content    text NOT NULL CHECK (length(content) <= 4000),
    model      text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    dimension  integer NOT NULL CHECK (dimension BETWEEN 1 AND 2000),
    embedding  public.vector NOT NULL CHECK (public.vector_dims(embedding) = dimension),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, item_id, model, chunk)
);
CREATE INDEX embeddings_hnsw_384 ON embeddings
    USING hnsw ((embedding::public.vector(384)) public.vector_cosine_ops) WHERE dimension = 384;

-- Work to do: one row per item whose text changed. The writing transaction enqueues it (the
-- triggers below), so a write and its job commit together; `version` tells the worker whether
-- the item changed again while it was embedding; `run_after` is both the lease and the backoff.
CREATE TABLE embedding_jobs (
    kind        text NOT NULL CHECK (kind IN ('todo', 'project', 'project_task', 'event', 'document')),
    item_id     uuid NOT NULL,
    owner_id    text NOT NULL DEFAULT current_setting('mcp.user_id', true),
    version     bigint NOT NULL DEFAULT 1,
    attempts    integer NOT NULL DEFAULT 0,
    run_after   timestamptz NOT NULL DEFAULT now(),
    last_error  text CHECK (length(last_error) <= 300),
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, item_id)
);
CREATE INDEX embedding_jobs_due_idx ON embedding_jobs (run_after);

-- Enqueue on insert and on a change of the embedded text; a delete drops the item's vectors
-- and its pending job at once (also for tasks removed by their project's cascade).
CREATE FUNCTION embedding_enqueue() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    what text := TG_ARGV[0];
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM embeddings WHERE kind = what AND item_id = OLD.id;
        DELETE FROM embedding_jobs WHERE kind = what AND item_id = OLD.id;
        RETURN OLD;
    END IF;
    INSERT INTO embedding_jobs (kind, item_id, owner_id) VALUES (what, NEW.id, NEW.owner_id)
        ON CONFLICT (kind, item_id) DO UPDATE
        SET version = embedding_jobs.version + 1, attempts = 0, run_after = now(), last_error = NULL, enqueued_at = now();
    PERFORM pg_notify('mcp_pa_embeddings', current_schema());
    RETURN NEW;
END
$$;

CREATE TRIGGER todos_embed AFTER INSERT OR DELETE OR UPDATE OF title, notes ON todos
    FOR EACH ROW EXECUTE FUNCTION embedding_enqueue('todo');
CREATE TRIGGER projects_embed AFTER INSERT OR DELETE OR UPDATE OF name, description ON projects
    FOR EACH ROW EXECUTE FUNCTION embedding_enqueue('project');
CREATE TRIGGER project_tasks_embed AFTER INSERT OR DELETE OR UPDATE OF title ON project_tasks
    FOR EACH ROW EXECUTE FUNCTION embedding_enqueue('project_task');
CREATE TRIGGER calendar_events_embed AFTER INSERT OR DELETE OR UPDATE OF title, location, description ON calendar_events
    FOR EACH ROW EXECUTE FUNCTION embedding_enqueue('event');
-- Images and other binaries have no text to embed (their title and tags stay keyword-searchable).
CREATE TRIGGER documents_embed AFTER INSERT OR UPDATE OF title, content, tags ON documents
    FOR EACH ROW WHEN (NEW.content_type NOT LIKE 'image/%') EXECUTE FUNCTION embedding_enqueue('document');
CREATE TRIGGER documents_unembed AFTER DELETE ON documents
    FOR EACH ROW EXECUTE FUNCTION embedding_enqueue('document');

-- The same row-level security as the rows the vectors describe: this schema and the owner. The
-- queue worker also reads the whole tenant's queue (mcp.embedding_worker, set only by the app's
-- worker), then writes each item's vectors as that item's owner.
DO $$
DECLARE
    mine text := format('current_setting(''mcp.tenant_schema'', true) = %L', current_schema());
    owner text := 'owner_id = current_setting(''mcp.user_id'', true)';
    worker text := 'current_setting(''mcp.embedding_worker'', true) = ''on''';
BEGIN
    ALTER TABLE embeddings ENABLE ROW LEVEL SECURITY;
    ALTER TABLE embeddings FORCE ROW LEVEL SECURITY;
    EXECUTE format('CREATE POLICY owner_only ON embeddings USING (%s AND %s) WITH CHECK (%s AND %s)', mine, owner, mine, owner);
    ALTER TABLE embedding_jobs ENABLE ROW LEVEL SECURITY;
    ALTER TABLE embedding_jobs FORCE ROW LEVEL SECURITY;
    EXECUTE format('CREATE POLICY owner_or_worker ON embedding_jobs USING (%s AND (%s OR %s)) WITH CHECK (%s AND (%s OR %s))',
                   mine, owner, worker, mine, owner, worker);
END
$$;

-- Every existing row gets a job, so a tenant migrated from 0002 becomes searchable by meaning.
INSERT INTO embedding_jobs (kind, item_id, owner_id) SELECT 'todo', id, owner_id FROM todos;
INSERT INTO embedding_jobs (kind, item_id, owner_id) SELECT 'project', id, owner_id FROM projects;
INSERT INTO embedding_jobs (kind, item_id, owner_id) SELECT 'project_task', id, owner_id FROM project_tasks;
INSERT INTO embedding_jobs (kind, item_id, owner_id) SELECT 'event', id, owner_id FROM calendar_events;
INSERT INTO embedding_jobs (kind, item_id, owner_id) SELECT 'document', id, owner_id FROM documents WHERE content_type NOT LIKE 'image/%';
