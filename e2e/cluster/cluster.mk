# Local Kubernetes control plane for e2e tests; included by the main Makefile.
# Binaries are built once into $(HPP_CACHE_DIR) (default ~/.cache/hostpath-provisioner).
.PHONY: cluster-build cluster-up cluster-down cluster-restart-apiserver

cluster-build: ## build etcd, the Kubernetes binaries and helm (cached; 6–13 min on 2 cores the first time, helm a few more)
	@bash e2e/cluster/build.sh
	@bash e2e/cluster/build-helm.sh >/dev/null

cluster-up: ## start etcd, kube-apiserver, controller-manager, scheduler (+ node agent if built)
	@bash e2e/cluster/up.sh

cluster-down: ## stop the local cluster and remove .cluster/ state (keeps .cluster/bin, the link to the binary cache)
	@bash e2e/cluster/down.sh

cluster-restart-apiserver: ## restart kube-apiserver of the running cluster with the same flags (etcd data kept)
	@bash e2e/cluster/restart-apiserver.sh
