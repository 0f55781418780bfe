// torch.plot: attention heatmaps (PNG) and a self-contained interactive viewer (HTML), the
// head view and model view of bertviz without Jupyter or a CDN; attribution overlays and
// coloured tokens, Captum's pictures without matplotlib.
export { AttentionLike, Colormap, COLORMAPS } from './common';
export { attentionHeatmap, attentionGrid, HeatmapOptions, GridOptions } from './png';
export { attentionHtml, saveAttentionHtml, HtmlOptions } from './html';
export { matrixHeatmap, MatrixHeatmapOptions } from './matrix';
export {
  attributionOverlay,
  tokenAttributionHtml,
  tokenAttributionPng,
  tokenColor,
  normalizeAttribution,
  AttributionSign,
  OverlayOptions,
  TokenOptions,
  TokenPngOptions,
} from './attribution';
export { FeatureActivationsLike } from './features';
export { featureHtml, saveFeatureHtml, FeatureHtmlOptions } from './feature-html';
export { featureHeatmap, FeatureHeatmapOptions } from './feature-heatmap';
export { featureDashboard, saveFeatureDashboard, FeatureDashboardOptions } from './feature-dashboard';
