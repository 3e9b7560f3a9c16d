/** Jest global setup for e2e/: replaced by the control-plane harness (brings the cluster up once per run). */
export default function globalSetup(): void {}
