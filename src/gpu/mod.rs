//! The GPU backend: the same operation list as `cpu`, as WGSL compute shaders run
//! through wgpu (Vulkan, Metal, DX12).
//!
//! - One lazily created device per process ([`gpu`]), chosen as `'auto'` would: a
//!   discrete GPU, then an integrated or virtual one, then a software device
//!   (lavapipe).
//! - Pipelines are compiled once and cached by (shader, entry point).
//! - Buffers come from a pool keyed by size: a training loop that repeats its shapes
//!   allocates nothing new after its first step ([`Gpu::allocations`] counts).
//! - Every binding is a window of at most [`Gpu::binding_limit`] bytes; the op drivers
//!   in [`ops`] split work (batch, rows or elements) so that bigger tensors still run.
//! - Validation and out-of-memory errors are captured, never panics: they come back
//!   as `Error::Device` / `Error::Memory`, and the CPU path keeps working.

pub mod ops;
pub mod params;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

/// Threads per workgroup of the one-thread-per-element shaders.
pub const WG: u32 = 256;
/// Storage-buffer offsets are aligned to this many bytes (the WebGPU maximum of
/// `min_storage_buffer_offset_alignment`).
pub const ALIGN: u64 = 256;
/// Storage slots per pipeline layout (binding 0 is the uniform parameter block).
pub const SLOTS: usize = 6;
/// 32-bit words in the parameter block; words `0..SLOTS` are the element offsets of
/// the bound windows, the rest belong to the shader.
pub const PARAMS: usize = 48;

/// Shared by every shader: the bindings, the parameter block and its accessors.
const PRELUDE: &str = include_str!("shaders/prelude.wgsl");

/// One adapter as `convcore.devices()` shows it.
#[derive(Clone, Debug)]
pub struct AdapterDesc {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterDesc {
    fn of(info: &wgpu::AdapterInfo) -> AdapterDesc {
        let device_type = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        AdapterDesc {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            device_type: device_type.to_string(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        }
    }

    /// 'auto' ranks adapters: discrete, integrated, virtual, then software.
    fn rank(&self) -> u32 {
        match self.device_type.as_str() {
            "discrete" => 0,
            "integrated" => 1,
            "virtual" => 2,
            "other" => 3,
            _ => 4,
        }
    }

    /// A hardware GPU (not a software rasterizer such as lavapipe).
    pub fn is_hardware(&self) -> bool {
        self.rank() <= 2
    }
}

fn instance() -> wgpu::Instance {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu finds, best first by the 'auto' ranking.
pub fn adapters() -> Vec<AdapterDesc> {
    let found = std::panic::catch_unwind(|| {
        let inst = instance();
        pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()))
            .iter()
            .map(|a| AdapterDesc::of(&a.get_info()))
            .collect::<Vec<_>>()
    });
    let mut v = found.unwrap_or_default();
    v.sort_by_key(|a| a.rank());
    v
}

/// A pooled device buffer: returned to the pool when the last reference goes.
pub struct GBuf {
    buf: Option<wgpu::Buffer>,
    /// Size in bytes (a multiple of [`ALIGN`]).
    pub bytes: u64,
    gpu: Arc<Gpu>,
}

impl GBuf {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buf.as_ref().expect("live buffer")
    }
    pub fn same(&self, other: &GBuf) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Drop for GBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.gpu.release(self.bytes, b);
        }
    }
}

/// A float32 (or uint32) tensor on the device: a shared buffer and a shape.
#[derive(Clone)]
pub struct GpuTensor {
    pub buf: Arc<GBuf>,
    pub shape: Vec<usize>,
    pub int: bool,
}

impl GpuTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<GpuTensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::Value(format!(
                "cannot reshape a GPU array of shape {:?} ({} elements) into {:?} ({} elements)",
                self.shape,
                self.numel(),
                shape,
                n
            )));
        }
        Ok(GpuTensor { buf: self.buf.clone(), shape, int: self.int })
    }
}

/// Commands recorded but not yet submitted: dispatches and copies go into one encoder
/// and reach the queue together (one submission per training step instead of one per
/// operation). Submitted before any host write, read-back, wait or buffer destruction,
/// and every `BATCH` commands.
#[derive(Default)]
struct Pending {
    enc: Option<wgpu::CommandEncoder>,
    /// Parameter blocks of the recorded dispatches: back to the pool once submitted.
    uniforms: Vec<wgpu::Buffer>,
    commands: usize,
}

const BATCH: usize = 64;

#[derive(Default)]
struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    free_bytes: u64,
}

/// A byte count for messages: "3.2 MiB", "4.0 KiB", "12 bytes".
pub fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// The process's device.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: AdapterDesc,
    pub limits: wgpu::Limits,
    binding_limit: AtomicU64,
    pipeline_layout: wgpu::PipelineLayout,
    layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<(&'static str, &'static str), Arc<wgpu::ComputePipeline>>>,
    pool: Mutex<Pool>,
    uniforms: Mutex<Vec<wgpu::Buffer>>,
    pending: Mutex<Pending>,
    dummies: Vec<wgpu::Buffer>,
    errors: Arc<Mutex<Vec<(bool, String)>>>,
    lost: Arc<AtomicBool>,
    allocations: AtomicU64,
    readbacks: AtomicU64,
    this: OnceLock<std::sync::Weak<Gpu>>,
}

static GPU: OnceLock<std::result::Result<Arc<Gpu>, String>> = OnceLock::new();

/// The device, created on first use. `Error::Device` lists what was found when no
/// adapter gives a device.
pub fn gpu() -> Result<Arc<Gpu>> {
    GPU.get_or_init(|| match std::panic::catch_unwind(Gpu::create) {
        Ok(r) => r,
        Err(_) => Err("creating the wgpu device panicked".to_string()),
    })
    .clone()
    .map_err(Error::Device)
}

/// Whether a device exists (creating it if needed).
pub fn available() -> bool {
    gpu().is_ok()
}

impl Gpu {
    fn create() -> std::result::Result<Arc<Gpu>, String> {
        let inst = instance();
        let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        adapters.sort_by_key(|a| AdapterDesc::of(&a.get_info()).rank());
        let want = std::env::var("CONVCORE_GPU_ADAPTER").ok().map(|s| s.to_lowercase());
        if let Some(w) = &want {
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(w.as_str()));
        }
        let Some(adapter) = adapters.into_iter().next() else {
            let found = adapters_summary();
            return Err(format!(
                "no GPU adapter is available (wgpu found: {found}){}; install a Vulkan driver \
                 (on Debian/Ubuntu: apt-get install mesa-vulkan-drivers for the lavapipe software device) \
                 or use device='cpu'",
                want.map(|w| format!(", none matching CONVCORE_GPU_ADAPTER={w:?}")).unwrap_or_default()
            ));
        };
        let info = AdapterDesc::of(&adapter.get_info());
        let alimits = adapter.limits();
        let mut limits = wgpu::Limits::default();
        limits.max_storage_buffer_binding_size = alimits.max_storage_buffer_binding_size;
        limits.max_buffer_size = alimits.max_buffer_size;
        limits.max_compute_workgroup_storage_size = alimits.max_compute_workgroup_storage_size.min(32768);
        limits.max_storage_buffers_per_shader_stage = alimits.max_storage_buffers_per_shader_stage.min(8);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("convcore"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| format!("the adapter {:?} refused a device: {e}", info.name))?;
        let errors: Arc<Mutex<Vec<(bool, String)>>> = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let oom = matches!(e, wgpu::Error::OutOfMemory { .. });
            if let Ok(mut v) = sink.lock() {
                v.push((oom, e.to_string()));
            }
        }));
        let lost = Arc::new(AtomicBool::new(false));
        let lost2 = lost.clone();
        device.set_device_lost_callback(move |_reason, _msg| {
            lost2.store(true, Ordering::SeqCst);
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for s in 0..SLOTS {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: 1 + s as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("convcore slots"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("convcore"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let dummies = (0..SLOTS)
            .map(|_| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("convcore dummy"),
                    size: ALIGN,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let binding = limits.max_storage_buffer_binding_size as u64;
        let g = Arc::new(Gpu {
            device,
            queue,
            info,
            limits,
            binding_limit: AtomicU64::new(binding),
            pipeline_layout,
            layout,
            pipelines: Mutex::new(HashMap::new()),
            pool: Mutex::new(Pool::default()),
            uniforms: Mutex::new(Vec::new()),
            pending: Mutex::new(Pending::default()),
            dummies,
            errors,
            lost,
            allocations: AtomicU64::new(0),
            readbacks: AtomicU64::new(0),
            this: OnceLock::new(),
        });
        let _ = g.this.set(Arc::downgrade(&g));
        Ok(g)
    }

    fn arc(&self) -> Arc<Gpu> {
        self.this.get().and_then(|w| w.upgrade()).expect("the device is alive while used")
    }

    /// Largest window (bytes) one binding may cover.
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit.load(Ordering::Relaxed)
    }

    /// Lower the binding window (tests use it to force chunking on small tensors);
    /// `None` restores the adapter's limit.
    pub fn set_binding_limit(&self, bytes: Option<u64>) -> Result<()> {
        let max = self.limits.max_storage_buffer_binding_size as u64;
        let v = bytes.unwrap_or(max);
        if v < 4 * ALIGN || v > max {
            return Err(Error::Value(format!(
                "the binding limit must be between {} and {max} bytes, got {v}",
                4 * ALIGN
            )));
        }
        self.binding_limit.store(v / ALIGN * ALIGN, Ordering::Relaxed);
        Ok(())
    }

    /// Buffers created since the device was made (pool misses).
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// How many read-backs to the host have run (each waits for the queue).
    pub fn readbacks(&self) -> u64 {
        self.readbacks.load(Ordering::Relaxed)
    }

    /// An error recorded by wgpu since the last check, as our error type.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(Error::Device(
                "the GPU device was lost (driver reset or crash); restart the process to use the GPU again, \
                 or use device='cpu'"
                    .into(),
            ));
        }
        let mut v = self.errors.lock().map_err(|_| Error::Device("GPU error log poisoned".into()))?;
        if v.is_empty() {
            return Ok(());
        }
        let (oom, msg) = v.remove(0);
        v.clear();
        Err(if oom {
            Error::Memory(format!("the GPU ran out of memory: {msg}"))
        } else {
            Error::Device(format!("GPU error: {msg}"))
        })
    }

    /// A device buffer of at least `bytes` bytes (from the pool when one fits exactly).
    pub fn alloc(&self, bytes: u64, what: &str) -> Result<Arc<GBuf>> {
        let size = bytes.max(4).div_ceil(ALIGN) * ALIGN;
        if size > self.limits.max_buffer_size {
            return Err(Error::Memory(format!(
                "{what} needs {} on the GPU, more than the adapter's largest buffer ({} on {})",
                human_bytes(size),
                human_bytes(self.limits.max_buffer_size),
                self.info.name
            )));
        }
        let reused = {
            let mut p = self.pool.lock().map_err(|_| Error::Device("GPU pool poisoned".into()))?;
            let b = p.free.get_mut(&size).and_then(|v| v.pop());
            if b.is_some() {
                p.free_bytes -= size;
            }
            b
        };
        let buf = match reused {
            Some(b) => b,
            None => {
                self.allocations.fetch_add(1, Ordering::Relaxed);
                let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("convcore tensor"),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if let Err(e) = self.check() {
                    return Err(match e {
                        Error::Memory(m) => Error::Memory(format!("cannot allocate {what} on the GPU: {m}")),
                        other => other,
                    });
                }
                b
            }
        };
        Ok(Arc::new(GBuf { buf: Some(buf), bytes: size, gpu: self.arc() }))
    }

    fn release(&self, bytes: u64, b: wgpu::Buffer) {
        // Keep up to 4 GiB of free buffers for reuse; destroy the rest.
        const KEEP: u64 = 4 << 30;
        if let Ok(mut p) = self.pool.lock() {
            if p.free_bytes + bytes <= KEEP {
                p.free_bytes += bytes;
                p.free.entry(bytes).or_default().push(b);
                return;
            }
        }
        // Dropped, not destroyed: recorded commands may still use it; wgpu frees it after.
        drop(b);
    }

    /// Drop every pooled free buffer (frees device memory).
    pub fn trim(&self) {
        let _ = self.flush();
        if let Ok(mut p) = self.pool.lock() {
            for (_, v) in p.free.drain() {
                for b in v {
                    b.destroy();
                }
            }
            p.free_bytes = 0;
        }
    }

    /// A new tensor of `shape` (contents undefined).
    pub fn empty(&self, shape: &[usize], what: &str) -> Result<GpuTensor> {
        let n = crate::error::checked_numel(shape)?;
        let bytes = (n as u64).checked_mul(4).ok_or_else(|| Error::Memory(format!("{what} is too large")))?;
        Ok(GpuTensor { buf: self.alloc(bytes, what)?, shape: shape.to_vec(), int: false })
    }

    /// A zero-filled tensor.
    pub fn zeros(&self, shape: &[usize], what: &str) -> Result<GpuTensor> {
        let t = self.empty(shape, what)?;
        self.record(|enc| enc.clear_buffer(t.buf.raw(), 0, None))?;
        Ok(t)
    }

    /// Upload host data.
    pub fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        let t = self.empty(shape, "an uploaded array")?;
        if !data.is_empty() {
            // The buffer may come from the pool with recorded commands still using it.
            self.flush()?;
            self.queue.write_buffer(t.buf.raw(), 0, bytemuck::cast_slice(data));
        }
        self.check()?;
        Ok(t)
    }

    pub fn upload_u32(&self, data: &[u32], shape: &[usize]) -> Result<GpuTensor> {
        let mut t = self.empty(shape, "uploaded indices")?;
        if !data.is_empty() {
            self.flush()?;
            self.queue.write_buffer(t.buf.raw(), 0, bytemuck::cast_slice(data));
        }
        t.int = true;
        self.check()?;
        Ok(t)
    }

    /// Overwrite a tensor's contents from the host (same element count).
    pub fn write_f32(&self, t: &GpuTensor, data: &[f32]) -> Result<()> {
        if data.len() != t.numel() {
            return Err(Error::Value(format!("cannot write {} values into a GPU array of shape {:?}", data.len(), t.shape)));
        }
        if !data.is_empty() {
            self.flush()?;
            self.queue.write_buffer(t.buf.raw(), 0, bytemuck::cast_slice(data));
        }
        self.check()
    }

    /// Read `n` 32-bit words back (blocks until the queue has run).
    pub fn download_words(&self, t: &GpuTensor, n: usize) -> Result<Vec<u32>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        self.readbacks.fetch_add(1, Ordering::Relaxed);
        let bytes = (n as u64) * 4;
        let size = bytes.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convcore readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.check()?;
        self.record(|enc| enc.copy_buffer_to_buffer(t.buf.raw(), 0, &staging, 0, size))?;
        self.flush()?;
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for the GPU failed: {e}")))?;
        match rx.recv() {
            Ok(Ok(())) => {}
            _ => {
                self.check()?;
                return Err(Error::Device("reading a GPU buffer back failed".into()));
            }
        }
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("reading a GPU buffer back failed: {e}")))?;
            bytemuck::cast_slice::<u8, u32>(&view[..bytes as usize]).to_vec()
        };
        staging.unmap();
        staging.destroy();
        self.check()?;
        Ok(out)
    }

    pub fn download_f32(&self, t: &GpuTensor) -> Result<Vec<f32>> {
        Ok(self.download_words(t, t.numel())?.into_iter().map(f32::from_bits).collect())
    }

    /// Wait until all submitted work has finished.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for the GPU failed: {e}")))?;
        self.check()
    }

    /// Record commands into the pending encoder (submitted by `flush`).
    pub(crate) fn record<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> Result<R> {
        self.record_with(None, f)
    }

    fn record_with<R>(&self, uniform: Option<wgpu::Buffer>, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> Result<R> {
        let mut p = self.pending.lock().map_err(|_| Error::Device("GPU command list poisoned".into()))?;
        let enc = p.enc.get_or_insert_with(|| self.device.create_command_encoder(&Default::default()));
        let r = f(enc);
        p.uniforms.extend(uniform);
        p.commands += 1;
        if p.commands >= BATCH {
            self.submit_pending(&mut p);
        }
        drop(p);
        self.check()?;
        Ok(r)
    }

    fn submit_pending(&self, p: &mut Pending) {
        if let Some(enc) = p.enc.take() {
            self.queue.submit(Some(enc.finish()));
        }
        p.commands = 0;
        if !p.uniforms.is_empty() {
            if let Ok(mut v) = self.uniforms.lock() {
                v.append(&mut p.uniforms);
            }
        }
    }

    /// Submit the recorded commands to the queue (does not wait for them).
    pub fn flush(&self) -> Result<()> {
        {
            let mut p = self.pending.lock().map_err(|_| Error::Device("GPU command list poisoned".into()))?;
            self.submit_pending(&mut p);
        }
        self.check()
    }

    /// The cached pipeline of kernel `k` (compiled on first use): the prelude, the
    /// kernel's typed-parameter accessors, then its shader.
    pub fn pipeline(&self, k: &Kernel) -> Result<Arc<wgpu::ComputePipeline>> {
        let (name, src, entry) = (k.name, k.src, k.entry);
        let key = (name, entry);
        if let Some(p) = self.pipelines.lock().map_err(|_| Error::Device("pipeline cache poisoned".into()))?.get(&key) {
            return Ok(p.clone());
        }
        let header = k.params.map(|f| f()).unwrap_or_default();
        let source = format!("{PRELUDE}\n{header}\n{src}");
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(Cow::Owned(source)),
        });
        let p = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&self.pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.check().map_err(|e| Error::Device(format!("building GPU pipeline {name}::{entry} failed (a bug): {e}")))?;
        let p = Arc::new(p);
        self.pipelines.lock().map_err(|_| Error::Device("pipeline cache poisoned".into()))?.insert(key, p.clone());
        Ok(p)
    }

    fn uniform(&self, params: &[u32; PARAMS]) -> wgpu::Buffer {
        let b = self.uniforms.lock().ok().and_then(|mut v| v.pop()).unwrap_or_else(|| {
            self.allocations.fetch_add(1, Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("convcore params"),
                size: (PARAMS * 4) as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        self.queue.write_buffer(&b, 0, bytemuck::cast_slice(params));
        b
    }

    /// Run one dispatch of `groups` workgroups (laid out in x and y under the
    /// 65535-per-dimension limit; shaders read the linear group id). Each window binds
    /// `elems` 32-bit words of a buffer starting at word `off`; the shader sees the
    /// word offset within its binding in `params[slot]`.
    pub fn dispatch(&self, k: &Kernel, wins: &[Win<'_>], params: [u32; PARAMS], groups: u64) -> Result<()> {
        let at: Vec<(usize, Win<'_>)> = wins.iter().enumerate().map(|(s, w)| (s, Win { ..*w })).collect();
        self.dispatch_at(k, &at, params, groups)
    }

    /// [`Gpu::dispatch`] with each window at a chosen slot (0-based; slots not named are
    /// bound to zero-filled dummies, so an optional operand reads as zeros).
    pub fn dispatch_at(&self, k: &Kernel, wins: &[(usize, Win<'_>)], mut params: [u32; PARAMS], groups: u64) -> Result<()> {
        if groups == 0 {
            return Ok(());
        }
        if let Some(&(s, _)) = wins.iter().find(|(s, _)| *s >= SLOTS) {
            return Err(Error::Device(format!("kernel {} binds slot {s} (max {SLOTS})", k.entry)));
        }
        let pipe = self.pipeline(k)?;
        let mut binds: Vec<Option<(u64, u64, &GBuf)>> = vec![None; SLOTS];
        for (s, w) in wins.iter() {
            let s = *s;
            let start = (w.off as u64) * 4;
            let aligned = start / ALIGN * ALIGN;
            let end = ((w.off + w.elems.max(1)) as u64 * 4).min(w.buf.bytes);
            let size = (end - aligned).max(4).div_ceil(4) * 4;
            if size > self.binding_limit() {
                return Err(Error::Device(format!(
                    "kernel {} would bind {size} bytes, over the binding limit {} (a chunking bug)",
                    k.entry,
                    self.binding_limit()
                )));
            }
            params[s] = ((start - aligned) / 4) as u32;
            binds[s] = Some((aligned, size, w.buf));
        }
        let ubuf = self.uniform(&params);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ubuf.as_entire_binding() }];
        for s in 0..SLOTS {
            let resource = if let Some((off, size, buf)) = binds[s] {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: buf.raw(),
                    offset: off,
                    size: wgpu::BufferSize::new(size),
                })
            } else {
                self.dummies[s].as_entire_binding()
            };
            entries.push(wgpu::BindGroupEntry { binding: 1 + s as u32, resource });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &entries,
        });
        let x = groups.min(65535);
        let y = groups.div_ceil(x);
        if y > 65535 {
            return Err(Error::Value(format!("kernel {}: {groups} workgroups is too many for one dispatch", k.entry)));
        }
        self.record_with(Some(ubuf), |enc| {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(x as u32, y as u32, 1);
        })
    }
}

/// A shader entry point, and the WGSL accessors of its typed parameters (if it has a
/// `gpu_params!` struct).
pub struct Kernel {
    pub name: &'static str,
    pub src: &'static str,
    pub entry: &'static str,
    pub params: Option<fn() -> String>,
}

/// A window of a buffer: `elems` 32-bit words from word `off`.
pub struct Win<'a> {
    pub buf: &'a GBuf,
    pub off: usize,
    pub elems: usize,
}

impl<'a> Win<'a> {
    pub fn all(t: &'a GpuTensor) -> Win<'a> {
        Win { buf: &t.buf, off: 0, elems: t.numel() }
    }
    pub fn part(t: &'a GpuTensor, off: usize, elems: usize) -> Win<'a> {
        Win { buf: &t.buf, off, elems }
    }
}

fn adapters_summary() -> String {
    let a = adapters();
    if a.is_empty() {
        "no adapters".to_string()
    } else {
        a.iter().map(|d| format!("{} ({}, {})", d.name, d.backend, d.device_type)).collect::<Vec<_>>().join("; ")
    }
}

/// Every (shader, entry) pair the backend uses, so a test can build them all.
pub fn build_all_pipelines() -> Result<usize> {
    let g = gpu()?;
    let mut n = 0;
    for k in ops::ALL_KERNELS {
        g.pipeline(k)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    //! The GPU against the CPU in `cargo test`, on whatever adapter exists (lavapipe in
    //! CI, where CONVCORE_CI=1 makes a missing adapter a failure instead of a skip).
    use super::*;
    use crate::ops::conv::ConvPlan;
    use crate::ops::pool::Padding;

    fn device() -> Option<Arc<Gpu>> {
        match gpu() {
            Ok(g) => Some(g),
            Err(e) => {
                assert!(std::env::var("CONVCORE_CI").is_err(), "CI needs a GPU adapter: {e}");
                eprintln!("skipping GPU test: {e}");
                None
            }
        }
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn all_pipelines_build() {
        if device().is_none() {
            return;
        }
        assert_eq!(build_all_pipelines().unwrap(), ops::ALL_KERNELS.len());
    }

    #[test]
    fn conv_forward_matches_cpu() {
        let Some(g) = device() else { return };
        let plan = ConvPlan::new(5, &[9, 11], 3, 7, &[3, 3], &[2, 1], &[1, 1], Padding::Same).unwrap();
        let x = data(plan.in_shape().iter().product(), 1);
        let w = data(plan.weight_shape().iter().product(), 2);
        let want = crate::cpu::conv::conv_forward(&x, &w, None, &plan).unwrap();
        let xg = g.upload_f32(&x, &plan.in_shape()).unwrap();
        let wg = g.upload_f32(&w, &plan.weight_shape()).unwrap();
        let got = g.download_f32(&ops::conv_forward(&xg, &wg, None, &plan).unwrap()).unwrap();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-4 * scale, "{a} vs {b}");
        }
    }

    #[test]
    fn oversized_kernel_is_an_error_not_a_panic() {
        let Some(g) = device() else { return };
        let t = g.empty(&[4], "x").unwrap();
        let plan = ConvPlan::new(1, &[2], 1, 1, &[1], &[1], &[1], Padding::Valid).unwrap();
        // a kernel of the wrong size is a ValueError
        assert!(matches!(ops::conv_forward(&t, &t, None, &plan), Err(Error::Value(_))));
        // a buffer past the adapter's limit is a MemoryError
        assert!(matches!(g.alloc(g.limits.max_buffer_size + 1, "huge"), Err(Error::Memory(_))));
    }
}
