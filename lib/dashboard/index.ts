// torch.dashboard: feature and neuron dashboards over a dataset (SAEDashboard / Neuronpedia's),
// from an activation source or straight from a model and token sequences, and their export.
export { features, DashboardOptions, DashboardProgress, DashboardLogitsSource, DASHBOARD_DEFAULTS } from './features';
export { modelSource, ActivationSource, ActivationBatch, ModelSourceOptions, TokenSequences } from './source';
export { toNeuronpedia, NeuronpediaOptions, NeuronpediaBatch, NeuronpediaFeature, NeuronpediaActivation } from './neuronpedia';
export type { FeatureDashboard, DashboardExample, DashboardInterval, DashboardHistogram, DashboardLogits, DashboardTokenizer } from './types';
