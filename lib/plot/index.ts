// torch.plot: attention heatmaps (PNG) and a self-contained interactive viewer (HTML), the
// head view and model view of bertviz without Jupyter or a CDN.
export { AttentionLike, Colormap, COLORMAPS } from './common';
export { attentionHeatmap, attentionGrid, HeatmapOptions, GridOptions } from './png';
export { attentionHtml, saveAttentionHtml, HtmlOptions } from './html';
