//! A worker's inference session: a pooled input tensor that ONNX Runtime reads in place,
//! and output tensors allocated once, so a steady-state run allocates nothing on our side.

use std::path::Path;
use std::sync::Arc;

use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionOutputs};
use ort::value::Tensor;

use super::model::open_session_on;
use super::providers::{OpenvinoDevice, Provider, ProviderChoice};
use super::{EngineError, ModelInfo};

#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// ONNX Runtime intra-op threads for this session.
    pub intra_threads: usize,
    /// The execution provider, as chosen once per scenario (`engine::choose`).
    pub provider: Provider,
    pub openvino_device: OpenvinoDevice,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            intra_threads: 1,
            provider: Provider::Cpu,
            openvino_device: OpenvinoDevice::Cpu,
        }
    }
}

impl SessionOptions {
    /// Sessions of `intra_threads` threads on the provider of `choice`.
    pub fn on(choice: &ProviderChoice, intra_threads: usize) -> SessionOptions {
        SessionOptions {
            intra_threads,
            provider: choice.provider,
            openvino_device: choice.openvino_device,
        }
    }
}

pub struct InferenceSession {
    session: Session,
    info: Arc<ModelInfo>,
    /// Owns the pooled input buffer; ONNX Runtime was handed its address once, at creation.
    input: Tensor<f32>,
    /// Address of the pooled buffer as allocated, before ONNX Runtime saw it.
    pooled_addr: usize,
    input_shape: [usize; 4],
    /// Selects all outputs; fixed-shape ones are preallocated and written in place.
    run_options: RunOptions<HasSelectedOutputs>,
}

impl InferenceSession {
    /// Opens `info`'s model with a fixed input shape (NCHW or NHWC as the model wants).
    pub fn open(
        info: Arc<ModelInfo>,
        input_shape: [usize; 4],
        opts: SessionOptions,
    ) -> Result<Self, EngineError> {
        let session = open_session_on(
            &info.path,
            opts.intra_threads,
            opts.provider,
            opts.openvino_device,
        )?;
        let contract = |message: String| EngineError::Contract {
            model: info.id.clone(),
            message,
        };
        let input_info = info
            .inputs
            .first()
            .ok_or_else(|| contract("has no inputs".into()))?;
        if info.inputs.len() != 1 {
            return Err(contract(format!(
                "has {} inputs; lineside feeds one image tensor",
                info.inputs.len()
            )));
        }
        if !input_info.is_float32() {
            return Err(contract(format!(
                "input `{}` is {}, lineside feeds float32",
                input_info.name, input_info.dtype
            )));
        }
        // The pooled buffer: allocated once here, then owned by the tensor for the session's
        // life. ONNX Runtime keeps our pointer (no copy): see `input_is_pooled_buffer` test.
        let len: usize = input_shape.iter().product();
        let buffer = vec![0f32; len].into_boxed_slice();
        let pooled_addr = buffer.as_ptr() as usize;
        let input = Tensor::from_array((input_shape, buffer))
            .map_err(|e| contract(format!("cannot create input tensor: {e}")))?;

        let run_options = select_outputs(&session, &info, &[]).map_err(contract)?;
        Ok(InferenceSession {
            session,
            info,
            input,
            pooled_addr,
            input_shape,
            run_options,
        })
    }

    /// Preallocates outputs whose shape the model leaves open (e.g. a backbone's feature
    /// maps, which follow the input size) once the caller knows it, so that runs write
    /// into them in place instead of ONNX Runtime allocating new values every frame.
    pub fn preallocate_outputs(
        &mut self,
        shapes: &[(&str, Vec<usize>)],
    ) -> Result<(), EngineError> {
        self.run_options =
            select_outputs(&self.session, &self.info, shapes).map_err(|message| {
                EngineError::Contract {
                    model: self.info.id.clone(),
                    message,
                }
            })?;
        Ok(())
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn input_shape(&self) -> [usize; 4] {
        self.input_shape
    }

    /// The input tensor's memory, for preprocessing to write into.
    pub fn input_mut(&mut self) -> &mut [f32] {
        match self.input.try_extract_tensor_mut::<f32>() {
            Ok((_, data)) => data,
            // The tensor was created as f32 above; extraction cannot fail.
            Err(_) => &mut [],
        }
    }

    /// The address ONNX Runtime reads the input from (its `GetTensorMutableData`).
    pub fn input_data_ptr(&self) -> *const f32 {
        self.input.data_ptr() as *const f32
    }

    /// The address of the pooled buffer lineside allocated for the input.
    pub fn pooled_input_ptr(&self) -> *const f32 {
        self.pooled_addr as *const f32
    }

    /// The current input tensor contents (what the last preprocessing wrote).
    pub fn input(&self) -> &[f32] {
        match self.input.try_extract_tensor::<f32>() {
            Ok((_, data)) => data,
            Err(_) => &[],
        }
    }

    /// Runs the model on the current contents of the input buffer.
    pub fn run(&mut self) -> Result<SessionOutputs<'_>, EngineError> {
        let model = &self.info.id;
        self.session
            .run_with_options(ort::inputs![&self.input], &self.run_options)
            .map_err(|e| EngineError::Run {
                model: model.clone(),
                reason: e.to_string(),
            })
    }

    pub fn model_path(&self) -> &Path {
        &self.info.path
    }
}

/// All outputs selected; fixed-shape ones (and those given in `shapes`) preallocated.
fn select_outputs(
    session: &Session,
    info: &ModelInfo,
    shapes: &[(&str, Vec<usize>)],
) -> Result<RunOptions<HasSelectedOutputs>, String> {
    let mut selector = OutputSelector::no_default();
    for out in &info.outputs {
        selector = selector.with(out.name.clone());
        let given = shapes
            .iter()
            .find(|(n, _)| *n == out.name)
            .map(|(_, s)| s.clone());
        if let Some(shape) = given.or_else(|| out.fixed_shape()) {
            if let Some(value) = preallocate(session, &out.dtype, &shape) {
                selector = selector.preallocate(out.name.clone(), value);
            }
        }
    }
    Ok(RunOptions::new()
        .map_err(|e| e.to_string())?
        .with_outputs(selector))
}

fn preallocate(session: &Session, dtype: &str, shape: &[usize]) -> Option<ort::value::DynValue> {
    let alloc = session.allocator();
    match dtype {
        "float32" => Tensor::<f32>::new(alloc, shape.to_vec())
            .ok()
            .map(|t| t.into_dyn()),
        "int64" => Tensor::<i64>::new(alloc, shape.to_vec())
            .ok()
            .map(|t| t.into_dyn()),
        "bool" => Tensor::<bool>::new(alloc, shape.to_vec())
            .ok()
            .map(|t| t.into_dyn()),
        "uint8" => Tensor::<u8>::new(alloc, shape.to_vec())
            .ok()
            .map(|t| t.into_dyn()),
        _ => None,
    }
}
