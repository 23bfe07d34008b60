"""feature_store.yaml: read safely (yaml_loader), parsed and validated into a RepoConfig
(repo_config), and shown with secrets masked (display)."""
