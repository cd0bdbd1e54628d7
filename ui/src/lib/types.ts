// MLflow REST wire types (the subset the UI reads) and the shapes of mltrail's UI endpoints.

export interface KeyValue {
  key: string;
  value: string;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: "active" | "deleted";
  creation_time?: number;
  last_update_time?: number;
  tags?: KeyValue[];
}

export type RunStatus = "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED";

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: RunStatus;
  start_time: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: "active" | "deleted";
}

export interface Metric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
  run_id?: string;
}

export interface Dataset {
  name: string;
  digest: string;
  source_type: string;
  source: string;
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  tags?: KeyValue[];
  dataset: Dataset;
}

export interface Run {
  info: RunInfo;
  data: { metrics?: Metric[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: { dataset_inputs?: DatasetInput[] };
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export type XAxis = "step" | "time" | "relative";

export interface BucketedSeries {
  run_id: string;
  metric_key: string;
  x: number[];
  y: number[];
  points_in_range: number;
  sampled: boolean;
  non_finite?: number;
}

export interface MetricSummary {
  run_id: string;
  key: string;
  count: number;
  latest: { value: number | string; step: number; timestamp: number };
  min?: number;
  max?: number;
}

export interface GroupStats {
  key: string;
  count: number;
  mean: number;
  std?: number;
  min: number;
  max: number;
}

export interface RunGroup {
  value: string | null;
  count: number;
  metrics?: GroupStats[];
}

export interface ExperimentKeys {
  param_keys: string[];
  metric_keys: string[];
  tag_keys: string[];
  run_count: number;
}

export type ViewType = "ACTIVE_ONLY" | "DELETED_ONLY" | "ALL";
