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
CREATE TABLE meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "meta" VALUES('application','notebook-carbon');
INSERT INTO "meta" VALUES('schema_version','4');
INSERT INTO "meta" VALUES('created_at','1796550376.307875');
CREATE TABLE run_parts (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, 
	uid VARCHAR(32) NOT NULL, 
	parent_uid VARCHAR(32) NOT NULL, 
	name TEXT, 
	sweep TEXT, 
	tags TEXT, 
	params TEXT, 
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
	emissions_g DOUBLE, 
	pid INTEGER, 
	notes TEXT, 
	UNIQUE (uid)
);
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
	is_final BOOLEAN DEFAULT 0 NOT NULL, 
	checkpoint_interval_s DOUBLE, 
	UNIQUE (uid)
);
INSERT INTO "runs" VALUES(1,'3284c16448b540328843b5bd3efcf47b','paper','train.ipynb','lr 0.1','lr','["paper"]','{"lr": 0.1}',NULL,'a','d','p1','ok',NULL,1767229200.0,1767229800.0,600.0,3600000.0,2520000.0,720000.0,360000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',67.2,2.16,0.5,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037630921411511e+09,0,NULL);
INSERT INTO "runs" VALUES(2,'6e0c8f24a1954697b45684c4b1648e22','paper','train.ipynb',NULL,'lr','[]','{"lr": 0.5}',NULL,'a',NULL,NULL,'failed',NULL,1767232800.0,1767233400.0,600.0,1800000.0,1260000.0,360000.0,180000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',33.6,1.08,0.5,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037631094098094e+09,0,NULL);
INSERT INTO "runs" VALUES(3,'89b9c7a76d244078bf53e7c3628a40b6','paper','train.ipynb',NULL,'lr','["paper", "best"]','{"lr": 0.01}',NULL,'a',NULL,NULL,'ok',NULL,1767236400.0,1767237000.0,600.0,5400000.0,3.77999999999999953441e+06,1080000.0,540000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',1.00799999999999982951e+02,3.23999999999999976907e+00,0.5,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037631193447117e+09,1,NULL);
INSERT INTO "runs" VALUES(4,'5d88a6a266ad43319fe9b99f61dcabdd','paper','train.ipynb',NULL,'lr','[]','{}',NULL,'a2',NULL,NULL,'interrupted',NULL,1767240000.0,1767240600.0,600.0,2000000.0,1400000.0,400000.0,200000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',3.73333333333333285955e+01,1.2,NULL,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037631224346163e+09,0,NULL);
INSERT INTO "runs" VALUES(5,'f753d152c9bc4713a2cd11d9818c1091','paper','cpu.ipynb',NULL,NULL,'["paper"]','{}','
  model.fit(x)  # cpu baseline
','b','d','p2','ok',NULL,1767319200.0,1767319800.0,600.0,720000.0,NULL,576000.0,144000.0,'none','estimate-tdp','estimate-ram',1.0,381.0,'DE','test grid 2025',76.2,3.60000000000000042188e-01,NULL,'node-1',NULL,'Xeon Test',NULL,0,'process','[]',NULL,1.79655037631250786784e+09,0,NULL);
INSERT INTO "runs" VALUES(6,'8240fa4e572646fd9e9c422ad53921ec','paper','cpu.ipynb',NULL,NULL,'[]','{}','
  model.fit(x)  # cpu baseline
','b','d','p2','ok',NULL,1767322800.0,1767323400.0,600.0,720000.0,NULL,576000.0,144000.0,'none','estimate-tdp','estimate-ram',1.0,381.0,'DE','test grid 2025',76.2,3.60000000000000042188e-01,NULL,'node-1',NULL,'Xeon Test',NULL,0,'process','[]',5,1.79655037631346821782e+09,0,NULL);
INSERT INTO "runs" VALUES(7,'44fc262b299b4f3d816b57470e482dfe','paper',NULL,'a track() block',NULL,'[]','{}',NULL,NULL,NULL,NULL,'ok',NULL,1767326400.0,1767327000.0,600.0,300000.0,NULL,NULL,NULL,NULL,NULL,NULL,1.2,56.0,'FR','test grid 2025',5.6,0.18,NULL,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.7965503763144385815e+09,0,NULL);
INSERT INTO "runs" VALUES(8,'18268365b73942cfa88b9a0e6d726ffc','paper','train.ipynb','absurd',NULL,'[]','{}',NULL,'c',NULL,NULL,'ok',NULL,1767330000.0,1767330600.0,600.0,1.0e+300,693000.0,198000.0,99000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',18.48,5.94000000000000083488e-01,0.5,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037631515645982e+09,0,NULL);
INSERT INTO "runs" VALUES(9,'31513c2d013846519f58bfedf1a0be90','other','train.ipynb',NULL,'lr','[]','{}',NULL,'a',NULL,NULL,'ok',NULL,1767229200.0,1767229800.0,600.0,10000000.0,7000000.0,2000000.0,1000000.0,'nvml-counter','rapl','estimate-ram',1.2,56.0,'FR','test grid 2025',1.86666666666666657189e+02,6.0,0.5,'node-1',NULL,'Xeon Test','Test GPU',1,'process','[]',NULL,1.79655037631594347957e+09,0,NULL);
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
CREATE TABLE sweep_cache (
	project VARCHAR(200) NOT NULL, 
	sweep_key TEXT NOT NULL, 
	generation INTEGER NOT NULL, 
	summary TEXT NOT NULL, 
	PRIMARY KEY (project, sweep_key)
);
CREATE TABLE sweep_state (
	project VARCHAR(200) NOT NULL, 
	sweep_key TEXT NOT NULL, 
	generation INTEGER NOT NULL, 
	PRIMARY KEY (project, sweep_key)
);
INSERT INTO "sweep_state" VALUES('paper','lr',9);
INSERT INTO "sweep_state" VALUES('paper','code:b',2);
INSERT INTO "sweep_state" VALUES('paper','code:c',2);
INSERT INTO "sweep_state" VALUES('other','lr',1);
CREATE INDEX ix_runs_sweep ON runs (sweep);
CREATE INDEX ix_runs_project_started_at ON runs (project, started_at);
CREATE INDEX ix_runs_redundancy ON runs (project, code_fingerprint, inputs_fingerprint, params_fingerprint, status);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_run_parts_parent_uid ON run_parts (parent_uid);
CREATE INDEX ix_components_run_uid ON components (run_uid);
CREATE INDEX ix_samples_run_uid ON samples (run_uid);
CREATE TRIGGER runs_sweep_insert AFTER INSERT ON runs BEGIN INSERT INTO sweep_state (project, sweep_key, generation) SELECT NEW.project, (CASE WHEN NEW.sweep IS NOT NULL AND NEW.sweep <> '' THEN NEW.sweep WHEN NEW.code_fingerprint IS NOT NULL AND NEW.code_fingerprint <> '' THEN 'code:' || NEW.code_fingerprint END), 1 WHERE (CASE WHEN NEW.sweep IS NOT NULL AND NEW.sweep <> '' THEN NEW.sweep WHEN NEW.code_fingerprint IS NOT NULL AND NEW.code_fingerprint <> '' THEN 'code:' || NEW.code_fingerprint END) IS NOT NULL ON CONFLICT (project, sweep_key) DO UPDATE SET generation = sweep_state.generation + 1; END;
CREATE TRIGGER runs_sweep_update AFTER UPDATE OF project, sweep, code_fingerprint, status, started_at, energy_j, emissions_g, redundant_of, is_final, params, cell_source, name ON runs BEGIN INSERT INTO sweep_state (project, sweep_key, generation) SELECT OLD.project, (CASE WHEN OLD.sweep IS NOT NULL AND OLD.sweep <> '' THEN OLD.sweep WHEN OLD.code_fingerprint IS NOT NULL AND OLD.code_fingerprint <> '' THEN 'code:' || OLD.code_fingerprint END), 1 WHERE (CASE WHEN OLD.sweep IS NOT NULL AND OLD.sweep <> '' THEN OLD.sweep WHEN OLD.code_fingerprint IS NOT NULL AND OLD.code_fingerprint <> '' THEN 'code:' || OLD.code_fingerprint END) IS NOT NULL ON CONFLICT (project, sweep_key) DO UPDATE SET generation = sweep_state.generation + 1; INSERT INTO sweep_state (project, sweep_key, generation) SELECT NEW.project, (CASE WHEN NEW.sweep IS NOT NULL AND NEW.sweep <> '' THEN NEW.sweep WHEN NEW.code_fingerprint IS NOT NULL AND NEW.code_fingerprint <> '' THEN 'code:' || NEW.code_fingerprint END), 1 WHERE (CASE WHEN NEW.sweep IS NOT NULL AND NEW.sweep <> '' THEN NEW.sweep WHEN NEW.code_fingerprint IS NOT NULL AND NEW.code_fingerprint <> '' THEN 'code:' || NEW.code_fingerprint END) IS NOT NULL AND (NEW.project IS NOT OLD.project OR (CASE WHEN NEW.sweep IS NOT NULL AND NEW.sweep <> '' THEN NEW.sweep WHEN NEW.code_fingerprint IS NOT NULL AND NEW.code_fingerprint <> '' THEN 'code:' || NEW.code_fingerprint END) IS NOT (CASE WHEN OLD.sweep IS NOT NULL AND OLD.sweep <> '' THEN OLD.sweep WHEN OLD.code_fingerprint IS NOT NULL AND OLD.code_fingerprint <> '' THEN 'code:' || OLD.code_fingerprint END)) ON CONFLICT (project, sweep_key) DO UPDATE SET generation = sweep_state.generation + 1; END;
CREATE TRIGGER runs_sweep_delete AFTER DELETE ON runs BEGIN INSERT INTO sweep_state (project, sweep_key, generation) SELECT OLD.project, (CASE WHEN OLD.sweep IS NOT NULL AND OLD.sweep <> '' THEN OLD.sweep WHEN OLD.code_fingerprint IS NOT NULL AND OLD.code_fingerprint <> '' THEN 'code:' || OLD.code_fingerprint END), 1 WHERE (CASE WHEN OLD.sweep IS NOT NULL AND OLD.sweep <> '' THEN OLD.sweep WHEN OLD.code_fingerprint IS NOT NULL AND OLD.code_fingerprint <> '' THEN 'code:' || OLD.code_fingerprint END) IS NOT NULL ON CONFLICT (project, sweep_key) DO UPDATE SET generation = sweep_state.generation + 1; END;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('runs',9);
COMMIT;
