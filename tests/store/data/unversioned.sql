-- A database made by the SQLite store before its schema was versioned (commit 2338097,
-- user_version 0), as `sqlite3 FILE .dump` prints it. The store made it with the bucket
-- verbs on a clock counting seconds from 1800000000: seven works deposited (ids done-1,
-- done-2, done-3, run-1, queue-1..3, in pipelines "search" and "calibrate"); run-1
-- claimed with a 600-second lease; done-1 claimed and completed as success with results
-- {"dm": 56.7, "note": "bright glitch"}, tags pulsar and night; done-2 claimed and
-- failed for good with the error "no signal in beam", tag pulsar; their words indexed
-- (index_text); then done-3 cancelled by "operator" (tag beam, its words still waiting
-- in results_unindexed); "search" configured with default priority 3 and "calibrate"
-- paused. Read by tests/store/test_sqlite_migrations.py.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE work (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    creation REAL NOT NULL,
    attempt INTEGER NOT NULL,
    expires REAL,
    not_before REAL,
    doc TEXT NOT NULL
);
INSERT INTO work VALUES('run-1','search','running',5,1800000005.0,1,1800000600.0,NULL,'{"pipeline":"search","site":"local","user":"root","function":null,"parameters":{"source":"frb"},"command":null,"results":null,"products":null,"plots":null,"tags":null,"event":null,"id":"run-1","creation":1800000005.0,"start":1800000000.0,"stop":null,"attempt":1,"status":"running","timeout":3600,"retries":2,"priority":5,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":{"runner":null,"host":null,"by":null,"claimed":1800000000.0,"heartbeat":1800000000.0,"expires":1800000600.0},"history":[]}');
INSERT INTO work VALUES('queue-1','search','queued',2,1800000007.0,0,NULL,NULL,'{"pipeline":"search","site":"local","user":"root","function":null,"parameters":{"source":"geminga"},"command":null,"results":null,"products":null,"plots":null,"tags":["later"],"event":null,"id":"queue-1","creation":1800000007.0,"start":null,"stop":null,"attempt":0,"status":"queued","timeout":3600,"retries":2,"priority":2,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[]}');
INSERT INTO work VALUES('queue-2','search','queued',3,1800000007.0,0,NULL,NULL,'{"pipeline":"search","site":"local","user":"root","function":null,"parameters":{"source":"moon"},"command":null,"results":null,"products":null,"plots":null,"tags":null,"event":null,"id":"queue-2","creation":1800000007.0,"start":null,"stop":null,"attempt":0,"status":"queued","timeout":3600,"retries":2,"priority":3,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[]}');
INSERT INTO work VALUES('queue-3','calibrate','queued',3,1800000007.0,0,NULL,NULL,'{"pipeline":"calibrate","site":"local","user":"root","function":null,"parameters":{"beam":8},"command":null,"results":null,"products":null,"plots":null,"tags":null,"event":null,"id":"queue-3","creation":1800000007.0,"start":null,"stop":null,"attempt":0,"status":"queued","timeout":3600,"retries":2,"priority":3,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[]}');
CREATE TABLE results (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER,
    creation REAL,
    start REAL,
    stop REAL,
    attempt INTEGER,
    site TEXT,
    user TEXT,
    doc TEXT NOT NULL
);
INSERT INTO results VALUES('done-1','search','success',3,1800000006.0,1800000001.0,1800000002.0,1,'local','root','{"pipeline":"search","site":"local","user":"root","function":null,"parameters":{"source":"crab"},"command":null,"results":{"dm":56.7,"note":"bright glitch"},"products":null,"plots":null,"tags":["pulsar","night"],"event":null,"id":"done-1","creation":1800000006.0,"start":1800000001.0,"stop":1800000002.0,"attempt":1,"status":"success","timeout":3600,"retries":2,"priority":3,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[{"kind":"attempt","attempt":1,"runner":null,"host":null,"claimed":1800000001.0,"started":1800000001.0,"stopped":1800000002.0,"outcome":"success","reason":null,"error":null,"nodes":null,"by":null}]}');
INSERT INTO results VALUES('done-2','search','failure',3,1800000006.0,1800000003.0,1800000004.0,1,'local','root','{"pipeline":"search","site":"local","user":"root","function":null,"parameters":{"source":"vela"},"command":null,"results":null,"products":null,"plots":null,"tags":["pulsar"],"event":null,"id":"done-2","creation":1800000006.0,"start":1800000003.0,"stop":1800000004.0,"attempt":1,"status":"failure","timeout":3600,"retries":0,"priority":3,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[{"kind":"attempt","attempt":1,"runner":null,"host":null,"claimed":1800000003.0,"started":1800000003.0,"stopped":1800000004.0,"outcome":"failure","reason":null,"error":{"type":"ValueError","message":"no signal in beam","traceback":null},"nodes":null,"by":null}]}');
INSERT INTO results VALUES('done-3','calibrate','cancelled',3,1800000006.0,NULL,NULL,0,'local','root','{"pipeline":"calibrate","site":"local","user":"root","function":null,"parameters":{"beam":7},"command":null,"results":null,"products":null,"plots":null,"tags":["beam"],"event":null,"id":"done-3","creation":1800000006.0,"start":null,"stop":null,"attempt":0,"status":"cancelled","timeout":3600,"retries":2,"priority":3,"config":{"archive":{"results":true,"products":"copy","plots":"copy","logs":"move"},"metrics":false,"parent":null,"orgs":["chimefrb"],"teams":null},"notify":{"slack":{"channel_id":null,"member_ids":null,"message":null,"results":null,"products":null,"plots":null,"blocks":null,"reply":null}},"graph":null,"backoff":null,"not_before":null,"lease":null,"history":[{"kind":"action","action":"cancel","at":1800000005.0,"by":"operator","changes":null}]}');
PRAGMA writable_schema=ON;
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','results_text','results_text',0,'CREATE VIRTUAL TABLE results_text USING fts5 (body)');
CREATE TABLE IF NOT EXISTS 'results_text_data'(id INTEGER PRIMARY KEY, block BLOB);
INSERT INTO results_text_data VALUES(1,X'0216');
INSERT INTO results_text_data VALUES(10,X'000000000101010001010101');
INSERT INTO results_text_data VALUES(137438953473,X'000000b30330353601020501013701020601046265616d02020b020572696768740102080104637261620102030102646d0102040106676c697463680102090102696e02020a01056c6f63616c01020d01020601056e6967687401020b02016f02020803027465010207010670756c73617201020a0102040104726f6f7401020c01020501067369676e616c02020902056f75726365010202010202010a76616c75656572726f720202070203656c61020203040706090a09070b070d0a06070e0c0b0d0f');
CREATE TABLE IF NOT EXISTS 'results_text_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
INSERT INTO results_text_idx VALUES(1,X'',2);
CREATE TABLE IF NOT EXISTS 'results_text_content'(id INTEGER PRIMARY KEY, c0);
INSERT INTO results_text_content VALUES(1,'source crab dm 56.7 note bright glitch pulsar night root local');
INSERT INTO results_text_content VALUES(2,'source vela pulsar root local ValueError no signal in beam');
CREATE TABLE IF NOT EXISTS 'results_text_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
INSERT INTO results_text_docsize VALUES(1,X'0c');
INSERT INTO results_text_docsize VALUES(2,X'0a');
CREATE TABLE IF NOT EXISTS 'results_text_config'(k PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO results_text_config VALUES('version',4);
CREATE TABLE results_unindexed (rowid INTEGER PRIMARY KEY);
INSERT INTO results_unindexed VALUES(3);
CREATE TABLE results_tags (
    tag TEXT NOT NULL, creation REAL, id TEXT NOT NULL,
    PRIMARY KEY (tag, creation, id)) WITHOUT ROWID;
INSERT INTO results_tags VALUES('beam',1800000006.0,'done-3');
INSERT INTO results_tags VALUES('night',1800000006.0,'done-1');
INSERT INTO results_tags VALUES('pulsar',1800000006.0,'done-1');
INSERT INTO results_tags VALUES('pulsar',1800000006.0,'done-2');
CREATE TABLE results_minutes (
    minute INTEGER NOT NULL, pipeline TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (minute, pipeline, status)) WITHOUT ROWID;
INSERT INTO results_minutes VALUES(1800000000,'calibrate','cancelled',1);
INSERT INTO results_minutes VALUES(1800000000,'search','failure',1);
INSERT INTO results_minutes VALUES(1800000000,'search','success',1);
CREATE TABLE pipelines (name TEXT PRIMARY KEY, settings TEXT NOT NULL);
INSERT INTO pipelines VALUES('search','{"defaults":{"priority":3,"retries":null,"timeout":null,"backoff":null},"paused":false,"history":[{"kind":"action","action":"configure","at":1800000006.0,"by":"operator","changes":{"defaults":{"priority":3,"retries":null,"timeout":null,"backoff":null}}}]}');
INSERT INTO pipelines VALUES('calibrate','{"defaults":{"priority":null,"retries":null,"timeout":null,"backoff":null},"paused":true,"history":[{"kind":"action","action":"pause","at":1800000007.0,"by":"operator","changes":{"paused":true}}]}');
CREATE TABLE work_tally (
    pipeline TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (pipeline, status)) WITHOUT ROWID;
INSERT INTO work_tally VALUES('calibrate','queued',1);
INSERT INTO work_tally VALUES('search','queued',2);
INSERT INTO work_tally VALUES('search','running',1);
CREATE TABLE results_tally (
    pipeline TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (pipeline, status)) WITHOUT ROWID;
INSERT INTO results_tally VALUES('calibrate','cancelled',1);
INSERT INTO results_tally VALUES('search','failure',1);
INSERT INTO results_tally VALUES('search','success',1);
CREATE INDEX work_claim
    ON work (pipeline, priority DESC, creation, id) WHERE status = 'queued';
CREATE INDEX work_expiry ON work (expires) WHERE status = 'running';
CREATE INDEX work_creation ON work (creation);
CREATE INDEX results_creation ON results (creation DESC, id DESC);
CREATE INDEX results_pipeline ON results (pipeline, creation DESC);
CREATE INDEX results_status ON results (status, creation DESC);
CREATE INDEX results_pipeline_status ON results (pipeline, status, creation DESC);
CREATE INDEX results_stop ON results (stop DESC);
CREATE INDEX results_site ON results (site, creation DESC);
CREATE INDEX results_user ON results (user, creation DESC);
CREATE TRIGGER results_unindexed_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_unindexed WHERE rowid = old.rowid;
END;
CREATE TRIGGER results_text_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_text WHERE rowid = old.rowid;
END;
CREATE TRIGGER results_text_update AFTER UPDATE OF doc ON results BEGIN
    UPDATE results_text SET body = workflow_text(new.doc) WHERE rowid = new.rowid;
END;
CREATE TRIGGER results_tags_delete AFTER DELETE ON results BEGIN
    DELETE FROM results_tags WHERE id = old.id AND creation IS old.creation
    AND tag IN (SELECT value FROM json_each(old.doc, '$.tags'));
END;
CREATE TRIGGER results_tags_update AFTER UPDATE OF doc ON results BEGIN
    DELETE FROM results_tags WHERE id = old.id AND creation IS old.creation
    AND tag IN (SELECT value FROM json_each(old.doc, '$.tags'));
    INSERT OR IGNORE INTO results_tags
    SELECT value, new.creation, new.id FROM json_each(new.doc, '$.tags') WHERE value IS NOT NULL;
END;
PRAGMA writable_schema=OFF;
COMMIT;
