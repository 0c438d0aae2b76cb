//! Counting trainable parameters. burn's `Module::num_params` also counts the batch-norm
//! running statistics (buffers in PyTorch's terms), so it disagrees with the published counts;
//! [`count_parameters`] counts what an optimiser trains, as torchvision does.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Counts parameters, skipping the `running_mean` / `running_var` running statistics.
#[derive(Default)]
struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let running = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !running {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

/// The number of trainable parameters of `module` (batch-norm running statistics excluded).
pub fn count_parameters(module: &impl Module) -> usize {
    let mut counter = TrainableCounter::default();
    module.visit(&mut counter);
    counter.count
}
