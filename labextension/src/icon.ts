import { LabIcon } from '@jupyterlab/ui-components';

// A leaf; `jp-icon3` lets the theme colour it like JupyterLab's own sidebar icons.
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M17 8C8 10 5.9 16.2 3.8 21.3l1.9.7 1-2.3c.5.2 1 .3 1.3.3C19 20 22 3 22 3c-1 2-8 2.3-13 3.3S2 11.5 2 13.5s1.8 3.8 1.8 3.8C7 8 17 8 17 8z"/>
  </g>
</svg>`;

export const carbonIcon = new LabIcon({ name: 'notebook-carbon:leaf', svgstr });
