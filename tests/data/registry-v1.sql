-- A registry written by notebook-carbon 0.1.0 (schema version 1), as `sqlite3 .dump` text.
-- tests/test_registry_migrations.py loads it into a file and opens it with the current code.
BEGIN TRANSACTION;
CREATE TABLE components (
	id INTEGER NOT NULL, 
	run_uid VARCHAR(32) NOT NULL, 
	component VARCHAR(8) NOT NULL, 
	device TEXT, 
	method VARCHAR(32) NOT NULL, 
	energy_j DOUBLE, 
	reason TEXT, 
	degraded TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_uid) REFERENCES runs (uid) ON DELETE CASCADE
);
INSERT INTO "components" VALUES(1,'00000000000000000000000000000001','cpu','package-0','rapl',3600.0,NULL,NULL);
INSERT INTO "components" VALUES(2,'00000000000000000000000000000002','cpu','package-0','rapl',7200.0,NULL,NULL);
INSERT INTO "components" VALUES(3,'00000000000000000000000000000003','cpu','package-0','rapl',10800.0,NULL,NULL);
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('application','notebook-carbon');
INSERT INTO "meta" VALUES('schema_version','1');
INSERT INTO "meta" VALUES('created_at','1795366771.0829732');
CREATE TABLE runs (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	uid VARCHAR(32) NOT NULL, 
	project VARCHAR(200) NOT NULL, 
	notebook TEXT, 
	name TEXT, 
	sweep TEXT, 
	tags TEXT, 
	params TEXT, 
	cell_source TEXT, 
	code_fingerprint VARCHAR(128), 
	inputs_fingerprint VARCHAR(128), 
	params_fingerprint VARCHAR(128), 
	status VARCHAR(16) NOT NULL, 
	error TEXT, 
	started_at DOUBLE NOT NULL, 
	ended_at DOUBLE, 
	duration_s DOUBLE, 
	energy_j DOUBLE, 
	gpu_energy_j DOUBLE, 
	cpu_energy_j DOUBLE, 
	ram_energy_j DOUBLE, 
	gpu_method VARCHAR(32), 
	cpu_method VARCHAR(32), 
	ram_method VARCHAR(32), 
	pue DOUBLE, 
	intensity_g_per_kwh DOUBLE, 
	intensity_region VARCHAR(64), 
	intensity_source TEXT, 
	emissions_g DOUBLE, 
	water_l DOUBLE, 
	embodied_g DOUBLE, 
	host TEXT, 
	pid INTEGER, 
	cpu_model TEXT, 
	gpu_model TEXT, 
	gpu_count INTEGER, 
	attribution VARCHAR(16), 
	notes TEXT, 
	redundant_of INTEGER, 
	updated_at DOUBLE, 
	UNIQUE (uid)
);
INSERT INTO "runs" VALUES(1,'00000000000000000000000000000001','thesis',NULL,'lr=0.1','lr','["v1"]','{"lr": 0.1}','train(lr)',NULL,NULL,NULL,'ok',NULL,1795000000.0,1795000060.0,60.0,3600.0,NULL,3600.0,NULL,NULL,'rapl',NULL,1.2,56.0,'FR','test',0.0672,NULL,NULL,'lab-1',4242,'Intel Xeon Gold 6248',NULL,NULL,'machine','["spine"]',NULL,1.79536677108667731285e+09);
INSERT INTO "runs" VALUES(2,'00000000000000000000000000000002','thesis',NULL,'lr=0.5','lr','["v1"]','{"lr": 0.5}','train(lr)',NULL,NULL,NULL,'ok',NULL,1795000100.0,1795000160.0,60.0,7200.0,NULL,7200.0,NULL,NULL,'rapl',NULL,1.2,56.0,'FR','test',0.1344,NULL,NULL,'lab-1',4242,'Intel Xeon Gold 6248',NULL,NULL,'machine','["spine"]',NULL,1.79536677109273982043e+09);
INSERT INTO "runs" VALUES(3,'00000000000000000000000000000003','thesis',NULL,'lr=1.0','lr','["v1"]','{"lr": 1.0}','train(lr)',NULL,NULL,NULL,'failed','RuntimeError: diverged',1795000200.0,1795000260.0,60.0,10800.0,NULL,10800.0,NULL,NULL,'rapl',NULL,1.2,56.0,'FR','test',0.2016,NULL,NULL,'lab-1',4242,'Intel Xeon Gold 6248',NULL,NULL,'machine','["spine"]',NULL,1.79536677109431362154e+09);
INSERT INTO "runs" VALUES(4,'00000000000000000000000000000004','thesis',NULL,'still running',NULL,'[]','{}',NULL,NULL,NULL,NULL,'running',NULL,1795000400.0,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,'lab-1',4243,NULL,NULL,NULL,NULL,'[]',NULL,1.79536677109531068799e+09);
CREATE TABLE samples (
	id INTEGER NOT NULL, 
	run_uid VARCHAR(32) NOT NULL, 
	t_s DOUBLE NOT NULL, 
	component VARCHAR(8) NOT NULL, 
	device TEXT, 
	power_w DOUBLE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_uid) REFERENCES runs (uid) ON DELETE CASCADE
);
INSERT INTO "samples" VALUES(1,'00000000000000000000000000000001',30.0,'cpu','package-0',60.0);
INSERT INTO "samples" VALUES(2,'00000000000000000000000000000002',30.0,'cpu','package-0',120.0);
INSERT INTO "samples" VALUES(3,'00000000000000000000000000000003',30.0,'cpu','package-0',180.0);
CREATE INDEX ix_runs_project_started_at ON runs (project, started_at);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_sweep ON runs (sweep);
CREATE INDEX ix_components_run_uid ON components (run_uid);
CREATE INDEX ix_samples_run_uid ON samples (run_uid);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('runs',4);
COMMIT;
