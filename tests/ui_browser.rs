mod support;
use support::browser::Browser;

#[tokio::test]
async fn smoke() {
    let b = Browser::start(800, 600).await;
    b.goto("data:text/html,<title>x</title><h1>hello world</h1>").await;
    b.wait_for_text("hello world", 5).await;
    let p = b.screenshot("smoke").await;
    println!("{}", p.display());
    b.close().await;
}
