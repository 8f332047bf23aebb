//! Prints the LogPipeline CRD as YAML; `crds/logpipeline.yaml` is its output, checked in.

use kube::CustomResourceExt;

fn main() -> anyhow::Result<()> {
    print!("{}", serde_yaml::to_string(&logpipe_operator::crd::LogPipeline::crd())?);
    Ok(())
}
